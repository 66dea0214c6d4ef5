// Where the bits of a CU mask land on an AMD GPU, and which masks would hang a queue.
//
// A HIP CU mask (hipExtStreamCreateWithCUMask) reaches amdkfd as a flat bit array (ROCr ->
// AMDKFD_IOC_SET_CU_MASK), and mqd_symmetrically_map_cu_mask() in amdkfd's kfd_mqd_manager.c
// (Linux 6.x / ROCK-Kernel-Driver with GFX 9.4.3 support) turns it into per-XCC, per-shader-engine
// enable masks of the queue's MQDs, one MQD per XCC:
//  - XCCs: for XCC x the kernel reads bits x, x + inc, x + 2*inc, ... with inc = cu_inc * num_xcc,
//    so on CDNA (cu_inc 1) bit i belongs to XCC i % num_xcc ("cu_mask[0] bit0 -> XCC0 ...,
//    bit1 -> XCC1 ..."), the order MI300X (8 XCCs) and MI308X (4) use.
//  - shader engines: within an XCC those bits are dealt round-robin, CU level by CU level, over the
//    shader arrays of every shader engine (order: cu 0 of SE0 SH0, cu 0 of SE1 SH0, ..., cu 0 of
//    SE0 SH1, ..., cu 1 of SE0 SH0, ...), skipping a (SE, SH) that has fewer active CUs.
//  - RDNA (GC >= 10, cu_inc = 2): a work-group processor is two CUs enabled together; either bit
//    of a pair enables the pair. HIP's multiProcessorCount counts WGPs there, so a mask needs two
//    bits per compute unit.
//  - bits beyond the device's active CUs are ignored (cu_mask_count is clamped to them).
// A queue whose MQD for some XCC has no CU enabled cannot run that XCC's share of a dispatch (the
// work-groups of a kernel are spread over all XCCs of the partition): the kernel never finishes.
// The kernel's own comment: "Returning with no CU's enabled will hang the queue". Shader engines
// left empty inside a non-empty XCC only narrow the stream (ROCm users run such masks), so they
// are reported, not refused.
//
// The per-SH CU counts come from the GPU's harvest bitmap, which userspace does not see; this
// model spreads the active CUs evenly over the shader arrays. That decides only where the last,
// partial CU level lands: whether an XCC (or an SE, at CU level 0) gets any bit is exact as long
// as every shader array has an active CU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gpucolo {
namespace dispatch {

struct CuLayout {
  int compute_units = 0;  // as the runtime counts them (WGPs on RDNA)
  int num_xcc = 1;
  int num_se_per_xcc = 1;
  int num_sh_per_se = 1;
  int bits_per_unit = 1;  // 2 on RDNA (WGP pairs)
};

/** CUs a mask enables, per XCC and per (XCC, SE); counted in mask bits (CUs, not WGPs). */
struct CuMaskCoverage {
  std::vector<int> per_xcc;  // num_xcc entries
  std::vector<int> per_se;   // num_xcc * num_se_per_xcc entries, XCC-major
  int total = 0;
};

inline bool MaskBit(const std::vector<uint32_t>& mask, int bit) {
  const size_t w = static_cast<size_t>(bit) / 32;
  return w < mask.size() && ((mask[w] >> (bit % 32)) & 1u) != 0;
}

/** The mapping of amdkfd's mqd_symmetrically_map_cu_mask() (see above) applied to `mask`. */
inline CuMaskCoverage MapCuMask(const CuLayout& l, const std::vector<uint32_t>& mask) {
  const int xccs = l.num_xcc > 0 ? l.num_xcc : 1;
  const int ses = l.num_se_per_xcc > 0 ? l.num_se_per_xcc : 1;
  const int shs = l.num_sh_per_se > 0 ? l.num_sh_per_se : 1;
  const int cu_inc = l.bits_per_unit > 1 ? 2 : 1;
  const int bits = l.compute_units * cu_inc;  // the kernel's cu_mask_count, clamped to the active CUs
  CuMaskCoverage c;
  c.per_xcc.assign(static_cast<size_t>(xccs), 0);
  c.per_se.assign(static_cast<size_t>(xccs * ses), 0);
  // active CUs of one XCC spread over its shader arrays, the first ones taking the remainder
  const int per_xcc_cus = bits / xccs;
  const int arrays = ses * shs;
  for (int x = 0; x < xccs; ++x) {
    int i = x;  // as the kernel does (i = inst), also with cu_inc 2
    const int inc = cu_inc * xccs;
    for (int cu = 0; cu < 16 && i < bits; cu += cu_inc) {
      for (int sh = 0; sh < shs && i < bits; ++sh) {
        for (int se = 0; se < ses && i < bits; ++se) {
          const int array = sh * ses + se;
          const int in_array = per_xcc_cus / arrays + (array < per_xcc_cus % arrays ? 1 : 0);
          if (in_array <= cu) continue;
          const bool on = MaskBit(mask, i) || (cu_inc == 2 && MaskBit(mask, i + 1));
          if (on) {
            c.per_xcc[static_cast<size_t>(x)] += cu_inc;
            c.per_se[static_cast<size_t>(x * ses + se)] += cu_inc;
            c.total += cu_inc;
          }
          i += inc;
        }
      }
    }
  }
  return c;
}

/**
 * "" when `mask` leaves no XCC without a CU; else why the queue would hang, naming the empty XCCs
 * and the smallest mask that works (one compute unit per XCC).
 */
inline std::string CheckCuMask(const CuLayout& l, const std::vector<uint32_t>& mask) {
  const CuMaskCoverage c = MapCuMask(l, mask);
  std::string empty;
  int n_empty = 0;
  for (size_t x = 0; x < c.per_xcc.size(); ++x) {
    if (c.per_xcc[x] != 0) continue;
    empty += (empty.empty() ? "" : ",") + std::to_string(x);
    ++n_empty;
  }
  if (n_empty == 0) return "";
  const int xccs = static_cast<int>(c.per_xcc.size());
  std::string why = "the CU mask enables " + std::to_string(c.total) + " CU" + (c.total == 1 ? "" : "s") +
                    " and leaves XCC" + (n_empty == 1 ? " " : "s ") + empty + " of " + std::to_string(xccs) +
                    " without any: KFD deals mask bits round-robin over the XCCs" +
                    (l.bits_per_unit > 1 ? std::string(" (in pairs)") : " (bit i -> XCC i % " + std::to_string(xccs) + ")") +
                    ", and a queue with no CU on an XCC never finishes that XCC's share of a kernel (it hangs); " +
                    "each side needs at least " + std::to_string(xccs) + " compute units (one per XCC)";
  return why;
}

}  // namespace dispatch
}  // namespace gpucolo
