// SM partitions of one CUDA device from green contexts, with the driver calls behind a `Drv`
// type so the bookkeeping also runs without a GPU: gpucolo_cuda.so instantiates it with the CUDA
// driver API (plugin.cu), the tests with a fake driver (native/tests/fake_green_plugin.cc,
// native/tests/test_green.cc). No CUDA header here; callers serialise (the plugin's global lock).
//
// One green context PER STREAM. cuda.h (CUDA 12.4 - 13.0, cuGreenCtxCreate): "a green context can
// be current to only one thread at a time. There is no internal synchronization to make API calls
// accessing the same green context from multiple threads work." The engine drives each stream
// from its own submitter thread, which makes the stream's context current around every launch, so
// streams that share a partition must not share its context: each stream gets its own green
// context created from the partition's resource descriptor. Green contexts may overlap (several
// over the same SMs are allowed), so they still share exactly the partition's SMs.
//
// Partition rules (per device):
//  - a partition is keyed by the sm_count asked for: streams asking for the same count share its
//    SMs (each through its own context);
//  - different counts get DISJOINT partitions, carved in creation order from the SMs not yet
//    partitioned (cuDevSmResourceSplitByCount). A request >= what is left takes all that is left;
//    the driver rounds a request up to its granularity (cuda.h "Green Contexts": sm_8x min 4,
//    multiples of 2; sm_90+ min 8, multiples of 8), so Partition::sms is what was made;
//  - the split's remainder can only be split again through a green context that holds it (cuda.h,
//    cuDevSmResourceSplitByCount: "the output results cannot be split again without first
//    creating a descriptor and a green context with that descriptor"): a holder context per carve;
//  - partitions stay (a later stream asking for the same count gets the same SMs) until no stream
//    holds any partition of the device; then every context goes and the whole device can be carved
//    afresh. A stream destroyed with work in flight keeps its lease until that work is done
//    (deferred_release.h), so its SMs are not handed to anyone else meanwhile.
//  - ordinary streams (sm_count 0) still run on the whole device: to keep a reserve for
//    high-priority work, put the other streams in a partition too (the engine does).
//
// Drv must provide:
//   using Resource (copyable SM resource), Desc (resource descriptor), Green (green context);
//   unsigned Sms(const Resource&) const;
//   int DeviceResource(Resource* out, std::string* err);                      // whole device
//   int Split(const Resource& in, unsigned min_sms, Resource* group, unsigned* groups,
//             Resource* rest, std::string* err);                              // one group
//   int MakeDesc(Resource* r, Desc* out, std::string* err);
//   int CreateGreen(Desc d, Green* out, std::string* err);
//   int GreenResource(Green g, Resource* out, std::string* err);               // what g holds
//   void DestroyGreen(Green g);
// each int is a gpucolo_status (gpu_plugin.h) with the driver's words in *err.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "dispatch/gpu_plugin.h"

namespace gpucolo_plugin {

template <class Drv>
class GreenPartitions {
 public:
  using Resource = typename Drv::Resource;
  using Desc = typename Drv::Desc;
  using Green = typename Drv::Green;

  struct Partition {
    int request = 0;   // sm_count asked for (the sharing key)
    unsigned sms = 0;  // SMs the driver made
    Desc desc{};       // every stream of the partition creates its context from it
    int leases = 0;
  };
  /** One stream's share: its own green context over its partition's SMs. */
  struct Lease {
    Partition* part = nullptr;
    Green green{};
  };

  explicit GreenPartitions(Drv* drv) : drv_(drv) {}
  GreenPartitions(const GreenPartitions&) = delete;
  GreenPartitions& operator=(const GreenPartitions&) = delete;
  ~GreenPartitions() {
    for (Partition* p : parts_) delete p;
  }

  /** A new green context for one stream, over the partition of `sm_count` SMs (carved if new). */
  int Acquire(int sm_count, Lease* out, std::string* err) {
    *out = Lease{};
    if (sm_count <= 0) {
      *err = "sm_count must be > 0, got " + std::to_string(sm_count);
      return GPUCOLO_ERR_INVALID;
    }
    Partition* p = Find(sm_count);
    bool carved = false;
    if (p == nullptr) {
      const int rc = Carve(sm_count, &p, err);
      if (rc != GPUCOLO_OK) return rc;
      carved = true;
    }
    Green g{};
    const int rc = drv_->CreateGreen(p->desc, &g, err);
    if (rc != GPUCOLO_OK) {
      if (carved && Leases() == 0) Reset();  // nothing uses what was just carved
      return rc;
    }
    ++p->leases;
    *out = Lease{p, g};
    return GPUCOLO_OK;
  }

  /** Destroys the lease's context; only call once nothing runs in it any more. */
  void Release(Lease* lease) {
    if (lease->part == nullptr) return;
    drv_->DestroyGreen(lease->green);
    --lease->part->leases;
    *lease = Lease{};
    if (Leases() == 0) Reset();
  }

  /** Partitions carved so far (kept while any stream of the device holds one). */
  size_t PartitionCount() const { return parts_.size(); }
  /** Green contexts alive: one per lease plus the holders of not yet carved SMs. */
  size_t ContextCount() const { return static_cast<size_t>(Leases()) + holders_.size(); }

 private:
  Partition* Find(int sm_count) const {
    for (Partition* p : parts_)
      if (p->request == sm_count) return p;
    return nullptr;
  }

  int Leases() const {
    int n = 0;
    for (const Partition* p : parts_) n += p->leases;
    return n;
  }

  int Carve(int sm_count, Partition** out, std::string* err) {
    if (exhausted_) {
      std::string held;
      for (const Partition* p : parts_)
        held += (held.empty() ? "" : ", ") + std::to_string(p->request) + " asked -> " + std::to_string(p->sms);
      *err = "every SM is already in a partition (" + held + " SMs); " + std::to_string(sm_count) +
             " more cannot be carved until the partitioned streams are destroyed";
      return GPUCOLO_ERR_INVALID;
    }
    int rc = GPUCOLO_OK;
    if (!have_pool_) {
      if ((rc = drv_->DeviceResource(&pool_, err)) != GPUCOLO_OK) return rc;
      have_pool_ = true;
    }
    const unsigned left = drv_->Sms(pool_);
    const bool take_all = static_cast<unsigned>(sm_count) >= left;
    Resource group{}, rest{};
    if (!take_all) {
      unsigned groups = 1;
      if ((rc = drv_->Split(pool_, static_cast<unsigned>(sm_count), &group, &groups, &rest, err)) != GPUCOLO_OK) return rc;
      if (groups == 0) {
        *err = "cannot carve " + std::to_string(sm_count) + " SMs from the " + std::to_string(left) + " not yet partitioned";
        return GPUCOLO_ERR_INVALID;
      }
    }
    Resource* use = take_all ? &pool_ : &group;
    auto* p = new Partition();
    p->request = sm_count;
    p->sms = drv_->Sms(*use);
    if ((rc = drv_->MakeDesc(use, &p->desc, err)) != GPUCOLO_OK) {
      delete p;
      return rc;
    }
    if (take_all || drv_->Sms(rest) == 0) {
      exhausted_ = true;
    } else {
      // the rest can only be split again through a green context that holds it
      Desc rdesc{};
      Green holder{};
      std::string ignored;
      bool ok = drv_->MakeDesc(&rest, &rdesc, &ignored) == GPUCOLO_OK && drv_->CreateGreen(rdesc, &holder, &ignored) == GPUCOLO_OK;
      if (ok) {
        holders_.push_back(holder);
        ok = drv_->GreenResource(holder, &pool_, &ignored) == GPUCOLO_OK;
      }
      if (!ok) exhausted_ = true;  // this partition stands; later ones cannot be carved
    }
    parts_.push_back(p);
    *out = p;
    return GPUCOLO_OK;
  }

  void Reset() {
    for (Partition* p : parts_) delete p;
    parts_.clear();
    for (Green h : holders_) drv_->DestroyGreen(h);
    holders_.clear();
    have_pool_ = false;
    exhausted_ = false;
  }

  Drv* drv_;
  std::vector<Partition*> parts_;
  std::vector<Green> holders_;  // green contexts that only hold the not yet carved rest
  bool have_pool_ = false, exhausted_ = false;
  Resource pool_{};
};

}  // namespace gpucolo_plugin
