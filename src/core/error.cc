// SPDX-License-Identifier: Apache-2.0
#include <confab/core/result.h>

namespace confab {

const char* toString(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "invalid_argument";
    case ErrorCode::NotFound:
      return "not_found";
    case ErrorCode::AlreadyExists:
      return "already_exists";
    case ErrorCode::PermissionDenied:
      return "permission_denied";
    case ErrorCode::Unauthenticated:
      return "unauthenticated";
    case ErrorCode::ResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::FailedPrecondition:
      return "failed_precondition";
    case ErrorCode::Unavailable:
      return "unavailable";
    case ErrorCode::Internal:
      return "internal";
  }
  return "internal";
}

}  // namespace confab
