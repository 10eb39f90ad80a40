#include "agent/status.h"

#include <cstring>

namespace tributary {

Status Status::FromErrno(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  StatusCode code = StatusCode::kIoError;
  if (err == ENOSPC || err == EDQUOT || err == EMFILE || err == ENFILE || err == ENOMEM)
    code = StatusCode::kResourceExhausted;
  if (err == ENOENT) code = StatusCode::kNotFound;
  return Status(code, std::move(m));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  static constexpr const char* kNames[] = {"OK",          "invalid argument", "not found",
                                           "I/O error",   "corruption",       "unavailable",
                                           "resource exhausted", "cancelled", "internal"};
  return std::string(kNames[static_cast<int>(rep_->code)]) + ": " + rep_->message;
}

}  // namespace tributary
