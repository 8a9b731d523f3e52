// SPDX-License-Identifier: Apache-2.0
#pragma once
// Result<T>: the value of an operation that can fail on a request, or the Error that says why.
// Services return it; the api module maps Error::code to an HTTP status and a problem+json body.
// Value type, no thread-safety concerns beyond those of T.

#include <string>
#include <utility>
#include <variant>

namespace confab {

enum class ErrorCode {
  InvalidArgument,  // bad input; `field` names what was wrong
  NotFound,         // also the answer for objects of another account (tenant boundary)
  AlreadyExists,
  PermissionDenied,
  Unauthenticated,
  ResourceExhausted,  // a limit or quota
  FailedPrecondition,
  Unavailable,  // transient; retry later
  Internal,     // a bug or an environment failure; details go to the log, never to a client
};

const char* toString(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;  // safe to show to the client that caused it
  std::string field;    // the input field or rule concerned, if any
};

template <typename T>
class [[nodiscard]] Result {
 public:
  // A default Result holds an Internal error: Asio default-constructs completion values.
  Result() : v_(Error{ErrorCode::Internal, "no result", {}}) {}
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Error makeError(ErrorCode code, std::string message, std::string field = {}) {
  return Error{code, std::move(message), std::move(field)};
}

}  // namespace confab

// Early return for plumbing: CONFAB_TRY(status_expression) returns its error from the caller.
#define CONFAB_TRY(expr)                 \
  do {                                   \
    auto confab_try_result_ = (expr);    \
    if (!confab_try_result_.ok()) {      \
      return confab_try_result_.error(); \
    }                                    \
  } while (0)
