// SPDX-License-Identifier: Apache-2.0
#include <confab/iam/password_policy.h>

#include <crack.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

namespace confab::iam {
namespace {

Error refused(std::string rule, std::string message) {
  return Error{ErrorCode::InvalidArgument, std::move(message), "password." + rule};
}

// NFKC of `s`; nullopt when `s` is not valid UTF-8.
std::optional<icu::UnicodeString> nfkc(std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) {
    return std::nullopt;
  }
  icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  // fromUTF8 turns invalid bytes into U+FFFD: a password holding that was not UTF-8.
  if (in.indexOf(static_cast<UChar32>(0xFFFD)) >= 0 &&
      std::string_view(s).find("\xef\xbf\xbd") == std::string_view::npos) {
    return std::nullopt;
  }
  icu::UnicodeString out = n->normalize(in, status);
  if (U_FAILURE(status)) {
    return std::nullopt;
  }
  return out;
}

std::string utf8Of(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

// Common substitutions undone, for letters written as digits and symbols.
char unsubstitute(char c) {
  switch (c) {
    case '@':
    case '4':
      return 'a';
    case '0':
      return 'o';
    case '1':
    case '!':
    case '|':
      return 'i';
    case '3':
      return 'e';
    case '5':
    case '$':
      return 's';
    case '7':
    case '+':
      return 't';
    case '8':
      return 'b';
    case '9':
      return 'g';
    default:
      return c;
  }
}

std::mutex& cracklibMutex() {  // cracklib keeps static state: one caller at a time
  static std::mutex m;
  return m;
}

}  // namespace

std::string normalisedForCommonCheck(std::string_view password) {
  auto n = nfkc(password);
  std::string s = n ? utf8Of(n->foldCase()) : std::string(password);
  // Leading and trailing digits and symbols: "Welcome1!" is "welcome", "!!P@ssw0rd1" "p@ssw0rd".
  auto edge = [](unsigned char c) { return c < 0x80 && !std::isalpha(c); };
  std::size_t b = 0;
  while (b < s.size() && edge(static_cast<unsigned char>(s[b]))) {
    ++b;
  }
  std::size_t e = s.size();
  while (e > b && edge(static_cast<unsigned char>(s[e - 1]))) {
    --e;
  }
  s = s.substr(b, e - b);
  std::transform(s.begin(), s.end(), s.begin(), unsubstitute);
  return s;
}

Result<std::unique_ptr<PasswordPolicy>> PasswordPolicy::load(PasswordRules rules) {
  std::unique_ptr<PasswordPolicy> p(new PasswordPolicy(std::move(rules)));
  if (!p->rules_.reject_common) {
    return p;
  }
  std::ifstream in(p->rules_.common_list);
  if (!in) {
    return makeError(ErrorCode::FailedPrecondition,
                     "the common-password list " + p->rules_.common_list +
                         " cannot be read (Debian package john-data)");
  }
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.starts_with("#!comment:")) {
      continue;
    }
    auto word = normalisedForCommonCheck(line);
    if (word.size() >= 3) {
      p->common_.insert(std::move(word));
    }
  }
  std::error_code ec;
  if (!std::filesystem::exists(p->rules_.cracklib_dict + ".pwd", ec)) {
    return makeError(ErrorCode::FailedPrecondition,
                     "the cracklib dictionary " + p->rules_.cracklib_dict +
                         ".pwd is missing (Debian package cracklib-runtime)");
  }
  return p;
}

Status PasswordPolicy::check(std::string_view password, const PersonalInfo& personal) const {
  auto n = nfkc(password);
  if (!n) {
    return refused("characters", "The password must be text (UTF-8).");
  }
  const int length = n->countChar32();
  if (length < rules_.min_length || length > rules_.max_length) {
    return refused("length", "The password must be " + std::to_string(rules_.min_length) + " to " +
                                 std::to_string(rules_.max_length) + " characters.");
  }
  bool special = rules_.specials.empty();
  bool digit = false;
  bool upper = false;
  bool lower = false;
  for (int32_t i = 0; i < n->length();) {
    UChar32 c = n->char32At(i);
    i += U16_LENGTH(c);
    const auto type = static_cast<UCharCategory>(u_charType(c));
    if (type == U_CONTROL_CHAR || type == U_UNASSIGNED || type == U_SURROGATE ||
        type == U_PRIVATE_USE_CHAR || type == U_FORMAT_CHAR) {
      return refused("characters", "The password may hold printable characters and letters only.");
    }
    special =
        special || (c < 0x80 && rules_.specials.find(static_cast<char>(c)) != std::string::npos);
    digit = digit || u_isdigit(c);
    upper = upper || type == U_UPPERCASE_LETTER || type == U_TITLECASE_LETTER;
    lower = lower || type == U_LOWERCASE_LETTER;
  }
  if (!special) {
    return refused("special", "The password needs at least one of " + rules_.specials + ".");
  }
  if (rules_.require_digit && !digit) {
    return refused("digit", "The password needs at least one digit.");
  }
  if (rules_.require_upper && !upper) {
    return refused("upper", "The password needs at least one upper-case letter.");
  }
  if (rules_.require_lower && !lower) {
    return refused("lower", "The password needs at least one lower-case letter.");
  }
  const std::string folded = normalisedForCommonCheck(password);
  for (const std::string& part :
       {personal.username, personal.email.substr(0, personal.email.find('@')),
        personal.display_name}) {
    auto p = normalisedForCommonCheck(part);
    if (p.size() >= 3 && folded.find(p) != std::string::npos) {
      return refused("personal", "The password must not be built on your name or e-mail address.");
    }
  }
  if (rules_.reject_common) {
    if (common_.contains(folded)) {
      return refused("common", "This password is too common; choose another.");
    }
    // cracklib's dictionary and rules are ASCII (English): other scripts would only meet its
    // byte-wise mangling, which calls almost anything "based on a dictionary word".
    const bool ascii = std::all_of(folded.begin(), folded.end(),
                                   [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (!ascii) {
      return {};
    }
    std::lock_guard lock(cracklibMutex());
    const std::string candidate(folded.size() >= 6 ? folded : std::string(password));
    if (const char* why = FascistCheck(candidate.c_str(), rules_.cracklib_dict.c_str());
        why != nullptr && std::string_view(why).find("dictionary") != std::string_view::npos) {
      return refused("common", "This password is based on a dictionary word; choose another.");
    }
  }
  return {};
}

std::string PasswordPolicy::generate(core::Random& random) const {
  static constexpr std::string_view kLower = "abcdefghijkmnopqrstuvwxyz";  // no l
  static constexpr std::string_view kUpper = "ABCDEFGHJKLMNPQRSTUVWXYZ";   // no I, O
  static constexpr std::string_view kDigits = "23456789";                  // no 0, 1
  const std::string specials = rules_.specials.empty() ? std::string("@#%") : rules_.specials;
  const std::string all =
      std::string(kLower) + std::string(kUpper) + std::string(kDigits) + specials;
  // A uniform index below n (rejection sampling on 32 random bits).
  auto uniform = [&](std::size_t n) {
    const std::uint64_t range = std::uint64_t{1} << 32;
    const std::uint64_t limit = range - range % n;
    for (;;) {
      std::array<std::uint8_t, 4> b{};
      random.fill(b);
      std::uint64_t v = (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) |
                        (std::uint64_t{b[2]} << 8) | b[3];
      if (v < limit) {
        return static_cast<std::size_t>(v % n);
      }
    }
  };
  auto pick = [&](std::string_view set) { return set[uniform(set.size())]; };
  for (;;) {
    std::string pw;
    pw += pick(kLower);
    pw += pick(kUpper);
    pw += pick(kDigits);
    pw += pick(specials);
    while (pw.size() < 20) {
      pw += pick(all);
    }
    // Shuffled, so that the required classes are not always in front (Fisher-Yates).
    for (std::size_t i = pw.size() - 1; i > 0; --i) {
      std::swap(pw[i], pw[uniform(i + 1)]);
    }
    if (check(pw).ok()) {
      return pw;
    }
  }
}

}  // namespace confab::iam
