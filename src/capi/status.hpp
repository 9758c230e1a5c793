// How every C entry point reports: it runs its body under guard(), which turns any exception into
// an mtile_status and keeps the message for mtile_last_error() on this thread.
#pragma once
#include <new>
#include <string>

#include "mtile/mtile.h"
#include "mtile/types.hpp"

namespace mtile::capi {

int fail(ErrorKind kind, std::string message);

template <class F>
int guard(F&& body) noexcept {
  try {
    body();
    return MTILE_OK;
  } catch (const Error& e) {
    return fail(e.kind(), e.what());
  } catch (const std::bad_alloc&) {
    return fail(ErrorKind::Device, "out of host memory");
  } catch (const std::exception& e) {
    return fail(ErrorKind::Internal, std::string("unexpected C++ exception: ") + e.what());
  } catch (...) {
    return fail(ErrorKind::Internal, "unexpected exception of an unknown type");
  }
}

}  // namespace mtile::capi
