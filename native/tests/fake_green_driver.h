// A stand-in for the CUDA driver's green-context calls, for green_partitions.h in the tests
// (test_green.cc) and in the fake green plugin (fake_green_plugin.cc). It behaves like the driver
// on an H100 (132 SMs, compute capability 9.0): cuDevSmResourceSplitByCount rounds a request up
// to a multiple of 8 (minimum 8, cuda.h "Green Contexts"), refuses to split a split's output again
// (only what a device or a green context holds can be split), and a green context over a
// descriptor holds exactly the descriptor's SMs. Not thread-safe: callers serialise, as the
// plugin's global lock does.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dispatch/gpu_plugin.h"

namespace gpucolo_test {

struct FakeGreenDriver {
  struct Resource {
    unsigned sms = 0;
    bool splittable = false;  // from DeviceResource / GreenResource, not from a split
  };
  using Desc = int;   // index into descs
  using Green = int;  // > 0

  unsigned total_sms = 132, min_sms = 8, align = 8;
  int fail_create_in = 0;  // > 0: the fail_create_in-th CreateGreen from now fails
  std::vector<Resource> descs;
  std::map<Green, unsigned> greens;  // live green contexts -> their SMs
  Green next = 1;
  int created = 0, destroyed = 0, destroyed_unknown = 0;

  unsigned Sms(const Resource& r) const { return r.sms; }
  int DeviceResource(Resource* out, std::string*) {
    *out = Resource{total_sms, true};
    return GPUCOLO_OK;
  }
  int Split(const Resource& in, unsigned min_count, Resource* group, unsigned* groups, Resource* rest, std::string* err) {
    if (!in.splittable) {
      *err = "CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION: the output of a split cannot be split again (fake)";
      return GPUCOLO_ERR_RUNTIME;
    }
    unsigned want = min_count < min_sms ? min_sms : min_count;
    want = (want + align - 1) / align * align;
    if (want > in.sms) {
      *groups = 0;
      return GPUCOLO_OK;
    }
    *group = Resource{want, false};
    *rest = Resource{in.sms - want, false};
    *groups = 1;
    return GPUCOLO_OK;
  }
  int MakeDesc(Resource* r, Desc* out, std::string*) {
    descs.push_back(*r);
    *out = static_cast<Desc>(descs.size() - 1);
    return GPUCOLO_OK;
  }
  int CreateGreen(Desc d, Green* out, std::string* err) {
    if (fail_create_in > 0 && --fail_create_in == 0) {
      *err = "CUDA_ERROR_OUT_OF_MEMORY: injected (fake)";
      return GPUCOLO_ERR_RUNTIME;
    }
    *out = next++;
    greens[*out] = descs.at(static_cast<size_t>(d)).sms;
    ++created;
    return GPUCOLO_OK;
  }
  int GreenResource(Green g, Resource* out, std::string* err) {
    auto it = greens.find(g);
    if (it == greens.end()) {
      *err = "CUDA_ERROR_INVALID_HANDLE (fake)";
      return GPUCOLO_ERR_RUNTIME;
    }
    *out = Resource{it->second, true};
    return GPUCOLO_OK;
  }
  void DestroyGreen(Green g) {
    if (greens.erase(g) == 0) ++destroyed_unknown;
    ++destroyed;
  }
};

}  // namespace gpucolo_test
