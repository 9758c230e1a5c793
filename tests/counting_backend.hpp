// A backend that wraps another (the CPU engine by default) and counts what reaches it: tests that
// a refused launch allocated, compiled and ran nothing.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mtile/runtime.hpp"

namespace mtile::testing {

class CountingBackend : public Backend {
 public:
  explicit CountingBackend(std::unique_ptr<Backend> inner = make_backend("cpu")) : inner_(std::move(inner)) {}
  std::string name() const override { return "counting"; }
  std::string device_name() const override { return "counting " + inner_->device_name(); }
  const Target& target() const override { return inner_->target(); }
  Buffer alloc(ScalarType e, uint64_t c) override {
    ++allocs;
    return adopt(inner_->alloc(e, c));
  }
  Buffer wrap(uint64_t a, ScalarType e, uint64_t c) override { return adopt(inner_->wrap(a, e, c)); }
  void release(Buffer& b) override {
    Buffer* in = inner(b);
    inner_->release(*in);
    inners_.erase(b.handle);
    b = Buffer{};
  }
  std::string why_unusable(const Buffer& b) const override {
    return b.owner == this && inners_.count(b.handle) ? "" : Backend::why_unusable(b);
  }
  void upload(Buffer& d, const void* h) override { inner_->upload(*inner(d), h); }
  void download(const Buffer& s, void* h) override { inner_->download(*inner(s), h); }
  std::shared_ptr<Executable> prepare(const ir::Function& f) override {
    ++prepares;
    return inner_->prepare(f);
  }
  void run(Executable& e, const Geometry& g, const std::vector<Buffer*>& t, const std::vector<uint64_t>& c,
           const Stream*) override {
    ++runs;
    std::vector<Buffer> copies;
    std::vector<Buffer*> ptrs;
    copies.reserve(t.size());
    for (Buffer* b : t) ptrs.push_back(b ? &copies.emplace_back(*inner(*b)) : nullptr);
    inner_->run(e, g, ptrs, c);
  }
  void synchronize() override {}
  int allocs = 0, prepares = 0, runs = 0;

 private:
  Buffer adopt(Buffer b) {
    inners_[b.handle] = b;
    b.owner = this;
    return b;
  }
  Buffer* inner(const Buffer& b) { return &inners_.at(b.handle); }
  std::map<uint64_t, Buffer> inners_;
  std::unique_ptr<Backend> inner_;
};

}  // namespace mtile::testing
