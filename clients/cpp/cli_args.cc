#include "clients/cpp/cli_args.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace taskd {

std::string ParsedArgs::Get(const std::string& name,
                            const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() || it->second.empty() ? fallback : it->second.back();
}

bool ParsedArgs::GetBool(const std::string& name) const {
  return Get(name, "false") == "true";
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     size_t begin,
                                     const std::vector<FlagSpec>& specs,
                                     bool stop_at_positional) {
  ParsedArgs parsed;
  size_t i = begin;
  bool flags_ended = false;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended || arg == "-" || !absl::StartsWith(arg, "-")) {
      if (stop_at_positional) break;
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    absl::string_view body(arg);
    body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
    const size_t eq = body.find('=');
    const std::string name(body.substr(0, eq));
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string value;
    if (spec->takes_value) {
      if (eq != absl::string_view::npos) {
        value = std::string(body.substr(eq + 1));
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    } else if (eq == absl::string_view::npos) {
      value = "true";
    } else {
      value = std::string(body.substr(eq + 1));
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " takes no value but true/false"));
      }
    }
    std::vector<std::string>& values = parsed.flags[name];
    if (!values.empty() && !spec->repeatable) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " given more than once"));
    }
    values.push_back(std::move(value));
  }
  parsed.next = i;
  return parsed;
}

}  // namespace taskd
