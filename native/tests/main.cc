#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>

#include "harness.h"

#ifndef GPUCOLO_FIXTURES_DIR
#error "GPUCOLO_FIXTURES_DIR must name test/fixtures/kfd (set by CMakeLists.txt)"
#endif

namespace gpucolo_test {

std::string FixturePath(const std::string& relative) { return std::string(GPUCOLO_FIXTURES_DIR) + "/" + relative; }

std::string ReadFixture(const std::string& relative) {
  const std::string path = FixturePath(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure{"cannot read fixture " + path};
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace gpucolo_test

int main() {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  for (const auto& t : gpucolo_test::Registry()) {
    try {
      t.fn();
      std::printf("ok - %s\n", t.name);
      ++passed;
    } catch (const gpucolo_test::Skipped& s) {
      std::printf("ok - %s # SKIP: %s\n", t.name, s.reason.c_str());
      ++skipped;
    } catch (const gpucolo_test::Failure& f) {
      std::printf("not ok - %s: %s\n", t.name, f.reason.c_str());
      ++failed;
    } catch (const std::exception& e) {
      std::printf("not ok - %s: exception: %s\n", t.name, e.what());
      ++failed;
    }
  }
  std::printf("native tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}
