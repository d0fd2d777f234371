// Status plumbing for absl::Status / absl::StatusOr.
//
//   absl::StatusOr<Profile> Load(std::string_view id) {
//     ASSIGN_OR_RETURN(std::string bytes, store.Get(id));
//     RETURN_IF_ERROR(Validate(bytes));
//     ...
//   }
//
// PROFILED_CHECK(cond) aborts with file:line for invariants that cannot fail
// after start-up (Envoy's RELEASE_ASSERT); likely failures return a Status.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PROFILED_CONCAT_INNER(a, b) a##b
#define PROFILED_CONCAT(a, b) PROFILED_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    ::absl::Status profiled_status_ = (expr);   \
    if (!profiled_status_.ok()) return profiled_status_; \
  } while (0)

// `lhs` may be a declaration and `tmp` is a name: neither can be
// parenthesized. NOLINTBEGIN(bugprone-macro-parentheses)
#define PROFILED_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#define ASSIGN_OR_RETURN(lhs, expr) \
  PROFILED_ASSIGN_OR_RETURN_IMPL(PROFILED_CONCAT(profiled_statusor_, __LINE__), lhs, expr)

#define PROFILED_CHECK(cond)                                                        \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
