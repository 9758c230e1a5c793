#include <fmt/format.h>

#include "commands.hpp"

namespace mtile::cli {

ScalarType parse_dtype_option(const std::string& text, const KernelSpec& k) {
  std::vector<std::string> have;
  for (ScalarType t : k.def.dtypes) have.push_back(type_name(t));
  if (text.empty()) return k.def.dtypes.at(0);
  auto t = parse_type(text);
  if (!t || !k.has_dtype(*t))
    throw Error(
        fmt::format("kernel {}: --dtype {} is not one of its dtypes ({})", k.name(), text, fmt::join(have, ", ")));
  return *t;
}

std::map<std::string, uint32_t> parse_set_options(const std::vector<std::string>& items) {
  std::map<std::string, uint32_t> out;
  for (const std::string& item : items) {
    Shape one = parse_shape(item);  // same NAME=VALUE syntax and checks
    out.insert(one.begin(), one.end());
  }
  return out;
}

}  // namespace mtile::cli
