// CU masks on multi-XCC AMD GPUs: where KFD puts each mask bit (cu_mask_layout.h, after amdkfd's
// mqd_symmetrically_map_cu_mask) and the engine's refusal of masks that leave an XCC without a CU
// (such a queue hangs), on a fake device of 4 XCCs (the cpu backend with 8 workers, reporting the
// layout of an MI308X-like part).
#include <string>
#include <vector>

#include "dispatch/cpu_backend.h"
#include "dispatch/cu_mask_layout.h"
#include "dispatch/engine.h"
#include "harness.h"

using namespace gpucolo::dispatch;

namespace {

std::vector<uint32_t> Bits(std::initializer_list<int> bits, int words = 1) {
  std::vector<uint32_t> m(static_cast<size_t>(words), 0u);
  for (int b : bits) m[static_cast<size_t>(b / 32)] |= 1u << (b % 32);
  return m;
}

std::vector<uint32_t> Range(int from, int to, int words) {
  std::vector<uint32_t> m(static_cast<size_t>(words), 0u);
  for (int b = from; b < to; ++b) m[static_cast<size_t>(b / 32)] |= 1u << (b % 32);
  return m;
}

}  // namespace

TEST(cu_mask_bits_go_round_robin_over_xccs_then_shader_engines) {
  // MI300X: 304 CUs, 8 XCCs of 38 CUs in 4 SEs x 1 SH
  CuLayout mi300x{304, 8, 4, 1, 1};
  // bit i -> XCC i % 8
  for (int b = 0; b < 16; ++b) {
    const CuMaskCoverage c = MapCuMask(mi300x, Bits({b}));
    CHECK_EQ(c.total, 1);
    CHECK_EQ(c.per_xcc[static_cast<size_t>(b % 8)], 1);
    // within the XCC the k-th bit (k = b / 8) goes to SE k % 4 at CU level 0
    CHECK_EQ(c.per_se[static_cast<size_t>((b % 8) * 4 + (b / 8) % 4)], 1);
  }
  // the first 32 bits: one CU on every SE of every XCC
  const CuMaskCoverage first32 = MapCuMask(mi300x, Range(0, 32, 10));
  for (int v : first32.per_se) CHECK_EQ(v, 1);
  // the whole mask: 38 per XCC
  const CuMaskCoverage all = MapCuMask(mi300x, Range(0, 304, 10));
  CHECK_EQ(all.total, 304);
  for (int v : all.per_xcc) CHECK_EQ(v, 38);
  // bits past the device's CUs are ignored (KFD clamps cu_mask_count)
  CHECK_EQ(MapCuMask(mi300x, Range(304, 320, 10)).total, 0);
}

TEST(cu_mask_leaving_an_xcc_empty_is_refused_with_a_reason) {
  CuLayout four{80, 4, 4, 1, 1};  // MI308X-like: 80 CUs, 4 XCCs
  CHECK_EQ(CheckCuMask(four, Range(0, 4, 3)), std::string());  // one per XCC: fine
  const std::string why = CheckCuMask(four, Range(0, 3, 3));   // XCC 3 gets nothing
  CHECK(why.find("XCC 3 of 4") != std::string::npos);
  CHECK(why.find("bit i -> XCC i % 4") != std::string::npos);
  CHECK(why.find("hang") != std::string::npos);
  CHECK(why.find("at least 4 compute units") != std::string::npos);
  // 8 CUs that all sit on XCC 0 (bits 0, 4, 8, ...): XCCs 1-3 empty
  const std::string stride = CheckCuMask(four, Bits({0, 4, 8, 12, 16, 20, 24, 28}, 3));
  CHECK(stride.find("XCCs 1,2,3 of 4") != std::string::npos);
  // a single-XCC GPU (MI210): any non-empty mask is fine, even one SE only
  CuLayout mi210{104, 1, 4, 2, 1};
  CHECK_EQ(CheckCuMask(mi210, Bits({0, 4, 8})), std::string());
  const CuMaskCoverage one_se = MapCuMask(mi210, Bits({0, 4, 8}));
  CHECK_EQ(one_se.per_se[0], 3);  // SE empty elsewhere: reported, not refused
  CHECK_EQ(one_se.per_se[1], 0);
}

TEST(cu_mask_rdna_enables_work_group_processors_in_pairs) {
  // gfx1100: 48 WGPs reported as compute units, 96 CUs, 6 SEs x 2 SHs; one bit of a pair enables both
  CuLayout rdna{48, 1, 6, 2, 2};
  const CuMaskCoverage c = MapCuMask(rdna, Bits({1}));
  CHECK_EQ(c.total, 2);
  CHECK_EQ(c.per_se[0], 2);
  CHECK_EQ(MapCuMask(rdna, Range(0, 96, 3)).total, 96);
}

namespace {

/** The cpu backend (8 workers) dressed as a 4-XCC device. */
const gpucolo_gpu_api* FourXccApi() {
  static gpucolo_gpu_api api = *CpuBackendApi();
  api.device_info = [](int d, gpucolo_device_info* out, char* e, unsigned el) {
    const int rc = CpuBackendApi()->device_info(d, out, e, el);
    out->num_xcc = 4;
    out->num_se_per_xcc = 1;
    out->num_sh_per_se = 1;
    return rc;
  };
  return &api;
}

RunSpec MaskRun(double reserve) {
  RunSpec spec;
  spec.api = FourXccApi();
  spec.mechanism = Mechanism::kCuMask;
  spec.reserve = reserve;
  spec.max_launches = 5;
  spec.watchdog_ns = 5000000000ull;
  for (int i = 0; i < 2; ++i) {
    StreamSpec s;
    s.name = i == 0 ? "hp" : "lp";
    s.high_priority = i == 0;
    s.kernel = gpucolo_kernel{0, 1, 64};
    spec.streams.push_back(s);
  }
  return spec;
}

}  // namespace

TEST(engine_refuses_cu_masks_that_leave_an_xcc_empty) {
  CpuBackendApi()->shutdown();
  CpuBackendOptions o = CpuBackendDefaultOptions();
  o.workers = 8;
  o.worker_nice = 0;
  CHECK_EQ(CpuBackendConfigure(o), 0);
  // 25% of 8 = 2 compute units for the HP side: XCCs 2 and 3 would get none
  RunResult r = Run(MaskRun(0.25));
  CHECK_EQ(r.status, GPUCOLO_ERR_INVALID);
  CHECK(r.error.find("stream 'hp'") != std::string::npos);
  CHECK(r.error.find("XCCs 2,3 of 4") != std::string::npos);
  // 75%: the LP side keeps 2
  r = Run(MaskRun(0.75));
  CHECK_EQ(r.status, GPUCOLO_ERR_INVALID);
  CHECK(r.error.find("stream 'lp'") != std::string::npos);
  // 50%: 4 each, one per XCC on both sides
  r = Run(MaskRun(0.5));
  if (r.status != GPUCOLO_OK) ::gpucolo_test::Fail(__FILE__, __LINE__, "run failed: " + r.error);
  CHECK_EQ(r.streams[0].cu_mask, (std::vector<uint32_t>{0x0f}));
  CHECK_EQ(r.streams[1].cu_mask, (std::vector<uint32_t>{0xf0}));
  CHECK_EQ(r.streams[0].compute_units, 4);
  CHECK_EQ(r.streams[1].compute_units, 4);
  // the plain cpu backend (one "XCC") takes the 25% reserve
  RunSpec plain = MaskRun(0.25);
  plain.api = CpuBackendApi();
  r = Run(plain);
  CHECK_EQ(r.status, GPUCOLO_OK);
  CHECK_EQ(r.streams[0].compute_units, 2);
  CpuBackendApi()->shutdown();
}

TEST(engine_builds_two_mask_bits_per_unit_on_rdna) {
  CpuBackendApi()->shutdown();
  CpuBackendOptions o = CpuBackendDefaultOptions();
  o.workers = 8;
  o.worker_nice = 0;
  CHECK_EQ(CpuBackendConfigure(o), 0);
  // a backend of 4 "WGPs" of 2 CUs (workers) each, as RDNA reports them: units [0, 2) -> bits [0, 4)
  static gpucolo_gpu_api api = *CpuBackendApi();
  api.device_info = [](int d, gpucolo_device_info* out, char* e, unsigned el) {
    const int rc = CpuBackendApi()->device_info(d, out, e, el);
    out->compute_units = 4;
    out->cu_mask_bits_per_unit = 2;
    return rc;
  };
  RunSpec spec = MaskRun(0.5);
  spec.api = &api;
  const RunResult r = Run(spec);
  if (r.status != GPUCOLO_OK) ::gpucolo_test::Fail(__FILE__, __LINE__, "run failed: " + r.error);
  CHECK_EQ(r.streams[0].cu_mask, (std::vector<uint32_t>{0x0f}));
  CHECK_EQ(r.streams[1].cu_mask, (std::vector<uint32_t>{0xf0}));
  CpuBackendApi()->shutdown();
}
