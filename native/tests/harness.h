// A minimal test harness without dependencies: TEST(name) { ... CHECK(...) ... }. Each test
// prints "ok - name", "not ok - name: reason" or, when it cannot be judged on this host (a timing
// test on a busy machine, see host_load.h), "ok - name # SKIP: reason"; main() ends with the
// tally line "native tests: N passed, M failed, K skipped" that scripts/ci-summary.mjs reads
// (skipped tests are not counted as passed), and exits 1 on failure.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace gpucolo_test {

struct Failure {
  std::string reason;
};

/** Thrown by Skip(): the test could not be judged here (the reason says why, with numbers). */
struct Skipped {
  std::string reason;
};

using TestFn = void (*)();

struct TestCase {
  const char* name;
  TestFn fn;
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Registrar {
  Registrar(const char* name, TestFn fn) { Registry().push_back(TestCase{name, fn}); }
};

[[noreturn]] inline void Fail(const char* file, int line, const std::string& what) {
  std::ostringstream os;
  os << file << ":" << line << ": " << what;
  throw Failure{os.str()};
}

/** Ends the test as skipped; main() prints "SKIP: reason". Only for what this host cannot judge. */
[[noreturn]] inline void Skip(const std::string& reason) { throw Skipped{reason}; }

template <class T>
std::string Show(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
inline std::string Show(const std::string& v) { return "\"" + v + "\""; }
inline std::string Show(const char* v) { return v ? "\"" + std::string(v) + "\"" : "(null)"; }
template <class T>
std::string Show(const std::vector<T>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Show(v[i]);
  return out + "]";
}

/** Reads a whole file; throws Failure if it cannot. */
std::string ReadFixture(const std::string& relative);
/** GPUCOLO_FIXTURES_DIR + "/" + relative */
std::string FixturePath(const std::string& relative);

}  // namespace gpucolo_test

#define TEST(name)                                                                  \
  static void test_##name();                                                        \
  static const ::gpucolo_test::Registrar registrar_##name(#name, &test_##name);     \
  static void test_##name()

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) ::gpucolo_test::Fail(__FILE__, __LINE__, std::string("CHECK(") + #cond + ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                              \
  do {                                                                                              \
    const auto& va_ = (a);                                                                          \
    const auto& vb_ = (b);                                                                          \
    if (!(va_ == vb_))                                                                              \
      ::gpucolo_test::Fail(__FILE__, __LINE__,                                                      \
                           std::string(#a " == " #b ": ") + ::gpucolo_test::Show(va_) + " vs " + ::gpucolo_test::Show(vb_)); \
  } while (0)
