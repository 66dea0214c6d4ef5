// File and directory helpers shared by the KFD sysfs readers (sysfs_reader.cc, sysfs_procs.cc).
// They reproduce what the TS readers see through fs.readdirSync, readInputFile and fs.existsSync
// (src/kfd/sysfs-reader.ts), so that both give the same issues, with the same codes, on one tree.
#pragma once

#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sysfs_reader.h"

namespace gpucolo {
namespace kfd {
namespace sysfs {

/**
 * readText() in sysfs-reader.ts (readInputFile, kind sysfs): nullptr, or the code of the error it
 * would throw. Only a regular file of at most 1 MiB is read.
 */
const char* ReadFile(const std::string& path, std::string* out);

/** fs.readdirSync (without "." and ".."), sorted bytewise; nullptr or the error code. */
const char* ListDir(const std::string& path, std::vector<std::string>* names);

/** A directory entry and the inode readdir() gave for it (d_ino, no stat() needed). */
struct DirEntry {
  std::string name;
  uint64_t ino;
};

/**
 * ListDir with each entry's inode; same order, same errors. `path` names the directory in errors;
 * with dirfd and rel it is opened as openat(dirfd, rel) (a shorter path walk), else as path.
 */
const char* ListDirEntries(const std::string& path, std::vector<DirEntry>* entries, int dirfd = AT_FDCWD, const char* rel = nullptr);

/** fs.existsSync */
bool Exists(const std::string& path);

ReadIssue CannotRead(const std::string& path, const char* code, Severity severity = Severity::kError);

/** Length without one trailing newline, LF or CR LF (chompLine in sysfs-reader.ts). */
size_t ChompedLength(const std::string& text);

/** ^-?\d{1,20}$ after dropping one trailing newline, as Number() reads it. */
bool ParseSysfsNumber(const std::string& text, double* value);

/** Replaces bytes outside 0x20..0x7e with '?' (the /[^\x20-\x7e]/g replace in TS). */
std::string Printable(const std::string& s);

ReadIssue BadNumber(const std::string& path, const std::string& text, const char* what = "a number");

/** A gpu_id is unsigned: a negative one is an error, not a value (-1 would read as "unreadable"). */
extern const char kGpuId[];
bool Negative(double v);

/** A name made of 1..max_digits ASCII digits without a leading zero (sysfs prints "%u"). */
bool NumericName(const std::string& name, size_t max_digits, uint64_t* value);

/** Numeric entries (TS: filter + map(Number) + numeric sort); paths use the number, not the name. */
std::vector<uint64_t> NumericEntries(const std::vector<std::string>& names, size_t max_digits);

/** The numeric entries of a listing with their inodes, in numeric order. */
std::vector<std::pair<uint64_t, uint64_t>> NumericEntriesWithIno(const std::vector<DirEntry>& entries, size_t max_digits);

/** ^(prefix)_(\d{1,10})$ for one of two prefixes; which = 0 or 1. */
bool MatchPrefixedNumber(const std::string& e, const char* p0, const char* p1, int* which, uint64_t* number);

}  // namespace sysfs
}  // namespace kfd
}  // namespace gpucolo
