// A small command-line parser for taskctl and taskd-worker, which need
// per-subcommand flags, repeatable flags, testable parsing without global
// state, and usage errors reported (not exit()ed) so the caller picks the
// exit status. absl flags give none of these.
//
// Accepted forms: `--name=value`, `--name value` (flags taking a value),
// `--name` / `--name=true|false` (boolean flags); `--` ends the flags.
// Anything else is positional.
//
// Thread-compatible.
#ifndef TASKD_CLIENTS_CPP_CLI_ARGS_H_
#define TASKD_CLIENTS_CPP_CLI_ARGS_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace taskd {

struct FlagSpec {
  std::string name;  // without the dashes
  bool takes_value = true;
  bool repeatable = false;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  // Values by flag name; boolean flags hold "true" or "false".
  std::map<std::string, std::vector<std::string>> flags;
  // Index in the input of the first token not consumed (see ParseArgs).
  size_t next = 0;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  // The last value of `name`, or `fallback` when absent.
  std::string Get(const std::string& name, const std::string& fallback) const;
  bool GetBool(const std::string& name) const;
};

// Parses `args` from `begin`. With `stop_at_positional`, stops before the
// first positional argument (ParsedArgs::next tells where). INVALID_ARGUMENT
// for an unknown flag, a missing or unexpected value, or a non-repeatable
// flag given twice.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     size_t begin,
                                     const std::vector<FlagSpec>& specs,
                                     bool stop_at_positional = false);

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_CLI_ARGS_H_
