/**
 * Items of a staged pipeline: from a .json file (an array of records carrying the category
 * field, or the benchmark form {category: [records]}), a .jsonl file, or a directory of such
 * files (sorted by name). Grouped by category, in the pipeline's `categories` order (default: in
 * order of first appearance). Every problem is one GpucoloError (EBADCONFIG or the file's errno).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpucoloError, errnoCode } from '../../errors.js';
import { InputFileError, readInputText } from '../../input-file.js';

export type Item = Record<string, unknown>;

export interface ItemCategory {
  name: string;
  /** items with id (string) and category set */
  items: { id: string; record: Item }[];
}

export interface ItemSourceSpec {
  source: string;
  categoryField?: string;
  idField?: string;
  categories?: string[];
}

function bad(msg: string, file: string): GpucoloError {
  return new GpucoloError(msg, { code: 'EBADCONFIG', path: file });
}

/** An item file: a regular file of at most 256 MiB (input-file.ts); InputFileError with the errno name, ENOTREG or EFBIG. */
function readText(file: string): string {
  try {
    return readInputText(file, { kind: 'items' });
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    throw new InputFileError(`cannot read items ${file}: ${err.code === 'ENOENT' ? 'no such file' : `${err.code} (${err.reason})`}`, { code: err.code, path: file, reason: err.reason });
  }
}

/** JSON.parse with a line:column in the message. */
function parseJson(text: string, file: string, lineOffset = 0): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const m = /position (\d+)/.exec(msg);
    let where = '';
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length + lineOffset;
      const col = pos - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${col}`;
    } else if (lineOffset) where = ` at line ${lineOffset + 1}`;
    throw bad(`${file}: not valid JSON${where}: ${msg.split('\n')[0]}`, file);
  }
}

function recordsOf(file: string, catField: string): { rec: Item; where: string }[] {
  const text = readText(file);
  const out: { rec: Item; where: string }[] = [];
  if (/\.jsonl$/i.test(file)) {
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      const v = parseJson(line, file, i);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(`${file}:${i + 1}: expected a JSON object per line`, file);
      out.push({ rec: v as Item, where: `${file}:${i + 1}` });
    });
    return out;
  }
  const v = parseJson(text, file);
  if (Array.isArray(v)) {
    v.forEach((r, i) => {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) throw bad(`${file}: [${i}] is not an object`, file);
      out.push({ rec: r as Item, where: `${file} [${i}]` });
    });
  } else if (v !== null && typeof v === 'object') {
    for (const [cat, list] of Object.entries(v as Record<string, unknown>)) {
      if (!Array.isArray(list)) throw bad(`${file}: "${cat}" should be an array of records (benchmark form {category: [records]})`, file);
      list.forEach((r, i) => {
        if (r === null || typeof r !== 'object' || Array.isArray(r)) throw bad(`${file}: ${cat}[${i}] is not an object`, file);
        out.push({ rec: { ...(r as Item), [catField]: (r as Item)[catField] ?? cat }, where: `${file} ${cat}[${i}]` });
      });
    }
  } else throw bad(`${file}: expected an array of records or {category: [records]}`, file);
  return out;
}

export function loadItems(spec: ItemSourceSpec, baseDir = process.cwd()): ItemCategory[] {
  const catField = spec.categoryField ?? 'category';
  const idField = spec.idField ?? 'id';
  const src = path.resolve(baseDir, spec.source);
  let files: string[];
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new GpucoloError(`items source ${src}: ${code === 'ENOENT' ? 'no such file or directory' : code}`, { code, path: src });
  }
  if (st.isDirectory()) {
    files = fs
      .readdirSync(src)
      .filter((f) => /\.jsonl?$/i.test(f))
      .sort()
      .map((f) => path.join(src, f));
    if (!files.length) throw bad(`items source ${src}: no .json or .jsonl files in the directory`, src);
  } else files = [src];
  const byCat = new Map<string, ItemCategory>();
  const seen = new Set<string>();
  for (const f of files) {
    for (const { rec, where } of recordsOf(f, catField)) {
      const cat = rec[catField];
      const id = rec[idField];
      if (typeof cat !== 'string' && typeof cat !== 'number') throw bad(`${where}: record has no "${catField}" (string)`, f);
      if (typeof id !== 'string' && typeof id !== 'number') throw bad(`${where}: record has no "${idField}" (string or number)`, f);
      const c = String(cat);
      const i = String(id);
      const k = `${c}\u0000${i}`;
      if (seen.has(k)) throw bad(`${where}: duplicate ${idField} "${i}" in category "${c}"`, f);
      seen.add(k);
      let entry = byCat.get(c);
      if (!entry) byCat.set(c, (entry = { name: c, items: [] }));
      entry.items.push({ id: i, record: rec });
    }
  }
  if (!spec.categories) return [...byCat.values()];
  return spec.categories.map((c) => {
    const e = byCat.get(c);
    if (!e) throw bad(`items source ${src}: no items in category "${c}" (have: ${[...byCat.keys()].join(', ') || 'none'})`, src);
    return e;
  });
}
