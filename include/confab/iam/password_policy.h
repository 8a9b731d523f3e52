// SPDX-License-Identifier: Apache-2.0
#pragma once
// PasswordPolicy: the one set of rules every path that sets a password applies (SPEC.md §2, from
// NIST SP 800-63B). By default:
//   - 8 to 128 characters, counted in code points after NFKC normalisation, never truncated;
//     any printable character and any Unicode letter, no control or unassigned code points;
//   - at least one of the special characters @ ! # $ % & _ = +, one digit, one upper-case and one
//     lower-case letter (by Unicode category, so "Ä" and "ß" count);
//   - not a common or breached password: the password is normalised (NFKC, case-folded, leading
//     and trailing digits and symbols stripped, common substitutions such as @→a, 0→o, 1→i, 3→e,
//     $→s undone) and compared with john-data's list and checked by cracklib, so that
//     "Password1!", "P@ssw0rd1" and "Welcome1!" are refused;
//   - not built on the user's name or e-mail address.
// A refusal is InvalidArgument whose field names the rule ("password.length", "password.special",
// "password.digit", "password.upper", "password.lower", "password.characters", "password.common",
// "password.personal"). Thread-safe after load().

#include <confab/core/random.h>
#include <confab/core/result.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

namespace confab::iam {

struct PasswordRules {
  int min_length = 8;
  int max_length = 128;
  std::string specials = "@!#$%&_=+";  // at least one of these, when not empty
  bool require_digit = true;
  bool require_upper = true;
  bool require_lower = true;
  bool reject_common = true;
  std::string common_list = "/usr/share/john/password.lst";         // john-data
  std::string cracklib_dict = "/var/cache/cracklib/cracklib_dict";  // cracklib-runtime
};

// What a password must not be built on.
struct PersonalInfo {
  std::string username;
  std::string email;
  std::string display_name;
};

class PasswordPolicy {
 public:
  // Reads the common-password list. FailedPrecondition naming the file when it or the cracklib
  // dictionary is missing and reject_common is set.
  static Result<std::unique_ptr<PasswordPolicy>> load(PasswordRules rules);

  Status check(std::string_view password, const PersonalInfo& personal = {}) const;

  // A random password that passes check() (20 characters of letters, digits and specials from
  // `random`): what new users are given before they choose their own.
  std::string generate(core::Random& random) const;

  const PasswordRules& rules() const { return rules_; }

 private:
  explicit PasswordPolicy(PasswordRules rules) : rules_(std::move(rules)) {}
  PasswordRules rules_;
  std::unordered_set<std::string> common_;  // normalised entries of the common list
};

// The normal form compared with the common list (exposed for tests and for the list loader).
std::string normalisedForCommonCheck(std::string_view password);

}  // namespace confab::iam
