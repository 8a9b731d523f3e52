// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one mapping from a service's Error to an HTTP answer: status by ErrorCode, an RFC 9457
// body with the request id, the field named when there is one, and no internal detail.

#include <confab/core/result.h>
#include <confab/net/http.h>

namespace confab::api {

int httpStatus(ErrorCode code);
net::Response errorResponse(const Error& error, const net::Request& request);

}  // namespace confab::api
