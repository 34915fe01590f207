#include "tests/bench/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace taskd::bench {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// JSON has no NaN or infinity.
std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  return absl::StrFormat("%.6g", value);
}

}  // namespace

std::optional<double> Figure::ratio() const {
  if (!reference.has_value() || *reference == 0) return std::nullopt;
  return value / *reference;
}

Results::Results(std::vector<std::pair<std::string, std::string>> labels)
    : labels_(std::move(labels)) {}

Figure& Results::Add(std::string row, std::string mode, double value,
                     std::string unit) {
  Figure& figure = figures_.emplace_back();
  figure.row = std::move(row);
  figure.mode = std::move(mode);
  figure.value = value;
  figure.unit = std::move(unit);
  return figure;
}

const Figure* Results::Find(absl::string_view row,
                            absl::string_view mode) const {
  for (const Figure& f : figures_) {
    if (f.row == row && f.mode == mode) return &f;
  }
  return nullptr;
}

std::string Results::JsonLine(const Figure& f) const {
  std::string line = "{";
  absl::StrAppend(
      &line, "\"row\":", JsonString(f.row), ",\"mode\":", JsonString(f.mode),
      ",\"value\":", JsonNumber(f.value), ",\"unit\":", JsonString(f.unit));
  if (f.reference.has_value()) {
    absl::StrAppend(&line, ",\"reference\":", JsonNumber(*f.reference),
                    ",\"reference_of\":", JsonString(f.reference_of));
    if (std::optional<double> r = f.ratio(); r.has_value()) {
      absl::StrAppend(&line, ",\"ratio\":", JsonNumber(*r));
    }
  }
  absl::StrAppend(&line, ",\"n\":", f.n, ",\"errors\":", f.errors,
                  ",\"time_limited\":", f.time_limited ? "true" : "false",
                  ",\"seconds\":", JsonNumber(f.seconds));
  if (!f.first_error.empty()) {
    absl::StrAppend(&line, ",\"first_error\":", JsonString(f.first_error));
  }
  for (const auto& [key, value] : f.extra) {
    absl::StrAppend(&line, ",", JsonString(key), ":", JsonNumber(value));
  }
  for (const auto& [key, value] : f.notes) {
    absl::StrAppend(&line, ",", JsonString(key), ":", JsonString(value));
  }
  for (const auto& [key, value] : labels_) {
    absl::StrAppend(&line, ",", JsonString(key), ":", JsonString(value));
  }
  return line + "}";
}

absl::Status Results::WriteJsonLines(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  for (const Figure& f : figures_) out << JsonLine(f) << '\n';
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void PrintTable(std::FILE* out,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const std::vector<std::string>& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const std::vector<std::string>& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const int width = static_cast<int>(widths[i]);
      if (i == 0) {
        absl::StrAppend(&line, absl::StrFormat("%-*s", width, row[i]));
      } else {
        absl::StrAppend(&line, "  ", absl::StrFormat("%*s", width, row[i]));
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    std::fprintf(out, "%s\n", line.c_str());
  }
  std::fflush(out);
}

std::string FormatNumber(double value, int decimals) {
  if (!std::isfinite(value)) return "-";
  std::string digits = absl::StrFormat("%.*f", decimals, std::fabs(value));
  const size_t point = digits.find('.');
  const size_t integer_end = point == std::string::npos ? digits.size() : point;
  std::string out;
  for (size_t i = 0; i < integer_end; ++i) {
    if (i > 0 && (integer_end - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  out += digits.substr(integer_end);
  return value < 0 && value != 0 ? "-" + out : out;
}

}  // namespace taskd::bench
