// SPDX-License-Identifier: Apache-2.0
#include <confab/iam/passwords.h>

#include <argon2.h>
#include <array>
#include <charconv>
#include <string>
#include <vector>

namespace confab::iam {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;
constexpr std::string_view kPrefix = "$argon2id$v=19$";

// "m=65536,t=3,p=1" -> its numbers, in that order only (what libargon2 writes).
std::optional<Argon2Params> parseParams(std::string_view s) {
  Argon2Params p;
  for (auto [name, field] : {std::pair<std::string_view, int*>{"m=", &p.memory_kib},
                             {"t=", &p.iterations},
                             {"p=", &p.parallelism}}) {
    if (s.substr(0, name.size()) != name) {
      return std::nullopt;
    }
    s.remove_prefix(name.size());
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *field);
    if (ec != std::errc() || *field <= 0) {
      return std::nullopt;
    }
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    if (name != "p=") {
      if (s.empty() || s.front() != ',') {
        return std::nullopt;
      }
      s.remove_prefix(1);
    }
  }
  return s.empty() ? std::optional<Argon2Params>(p) : std::nullopt;
}

}  // namespace

std::optional<Argon2Params> argon2ParamsOf(std::string_view encoded) {
  if (encoded.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  encoded.remove_prefix(kPrefix.size());
  return parseParams(encoded.substr(0, encoded.find('$')));
}

PasswordHasher::PasswordHasher(Argon2Params params, core::Random& random)
    : params_(params), random_(random) {}

Result<std::string> PasswordHasher::hash(std::string_view password) const {
  if (password.empty() || password.size() > kMaxPasswordBytes) {
    return makeError(ErrorCode::InvalidArgument,
                     "a password must be 1 to " + std::to_string(kMaxPasswordBytes) + " bytes",
                     "password");
  }
  std::array<std::uint8_t, kSaltBytes> salt{};
  random_.fill(salt);
  const auto m = static_cast<std::uint32_t>(params_.memory_kib);
  const auto t = static_cast<std::uint32_t>(params_.iterations);
  const auto p = static_cast<std::uint32_t>(params_.parallelism);
  std::vector<char> out(argon2_encodedlen(t, m, p, kSaltBytes, kHashBytes, Argon2_id) + 1);
  int rc = argon2id_hash_encoded(t, m, p, password.data(), password.size(), salt.data(),
                                 salt.size(), kHashBytes, out.data(), out.size());
  if (rc != ARGON2_OK) {
    return makeError(ErrorCode::Internal,
                     std::string("Argon2id hashing failed: ") + argon2_error_message(rc));
  }
  return std::string(out.data());
}

Result<PasswordHasher::Verdict> PasswordHasher::verify(std::string_view password,
                                                       std::string_view encoded) const {
  auto stored = argon2ParamsOf(encoded);
  if (!stored) {
    return makeError(ErrorCode::InvalidArgument, "the stored hash is not an Argon2id PHC string",
                     "password_hash");
  }
  if (password.empty() || password.size() > kMaxPasswordBytes) {
    return Verdict{};  // cannot match anything hash() accepted
  }
  const std::string text(encoded);  // libargon2 wants a C string
  int rc = argon2id_verify(text.c_str(), password.data(), password.size());
  if (rc == ARGON2_VERIFY_MISMATCH) {
    return Verdict{};
  }
  if (rc != ARGON2_OK) {
    return makeError(
        rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ErrorCode::Internal : ErrorCode::InvalidArgument,
        std::string("the stored hash does not verify: ") + argon2_error_message(rc),
        "password_hash");
  }
  bool same = stored->memory_kib == params_.memory_kib &&
              stored->iterations == params_.iterations &&
              stored->parallelism == params_.parallelism;
  return Verdict{true, !same};
}

}  // namespace confab::iam
