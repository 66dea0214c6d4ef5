/**
 * The design notes' two-stage pipeline for the staged tests: the model classes and items as the
 * notes write them live once, in examples/pipelines/notes-two-stage; the tests' pipeline.yaml
 * (test/fixtures/staged/notes-003: images not emitted, intermediates not kept) goes next to them.
 */
import fs from 'node:fs';
import path from 'node:path';

export const NOTES_FIXTURE = path.resolve('test/fixtures/staged/notes-003');
export const NOTES_EXAMPLE = path.resolve('examples/pipelines/notes-two-stage');

/** Fills `dir` with the notes' model classes, items and the tests' pipeline.yaml. */
export function copyNotesPipeline(dir: string): void {
  fs.cpSync(path.join(NOTES_EXAMPLE, 'src'), path.join(dir, 'src'), { recursive: true });
  fs.copyFileSync(path.join(NOTES_EXAMPLE, 'items.json'), path.join(dir, 'items.json'));
  fs.copyFileSync(path.join(NOTES_FIXTURE, 'pipeline.yaml'), path.join(dir, 'pipeline.yaml'));
}
