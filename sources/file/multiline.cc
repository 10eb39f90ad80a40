#include "sources/file/multiline.h"

namespace tributary::file {

bool ParseMultilineMode(std::string_view s, MultilineMode* out) {
  if (s == "continue_through") *out = MultilineMode::kContinueThrough;
  else if (s == "continue_past") *out = MultilineMode::kContinuePast;
  else if (s == "halt_before") *out = MultilineMode::kHaltBefore;
  else if (s == "halt_with") *out = MultilineMode::kHaltWith;
  else return false;
  return true;
}

}  // namespace tributary::file
