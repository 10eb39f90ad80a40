#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <re2/re2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "config/registry.h"

namespace tributary::config {

namespace fs = std::filesystem;

// ---- Global option tables ---------------------------------------------------

const Schema<BufferConfig>& BufferConfig::schema() {
  static const Schema<BufferConfig> s = [] {
    Schema<BufferConfig> s;
    s.Field("type", &BufferConfig::type, "Where events wait for the sink: in memory, or on disk under data_dir/buffer/<sink id>/ (survives restarts and crashes).")
        .OneOf({"memory", "disk"});
    s.Field("max_events", &BufferConfig::max_events, "Memory buffer: the most events it holds before `when_full` applies.").Min(1);
    s.Field("max_bytes", &BufferConfig::max_bytes, "Memory buffer: the most bytes of events it holds before `when_full` applies, counted as the events were read at their source (a line's length; `tributary_buffer_bytes`). Whichever of `max_events` and `max_bytes` is reached first makes the buffer full.").Min(1 << 20);
    s.Field("max_size", &BufferConfig::max_size, "Disk buffer: the most bytes it holds on disk before `when_full` applies.").Min(1 << 20);
    s.Field("when_full", &BufferConfig::when_full, "What happens when the buffer is full: `block` slows the sources down (nothing is dropped); `drop_newest` drops the incoming events and counts them.")
        .OneOf({"block", "drop_newest"});
    s.Field("flush_interval_ms", &BufferConfig::flush_interval_ms, "Disk buffer: longest time between a write and its fsync; events are acknowledged upstream only after it. 0 = fsync every batch.").Min(0);
    // The other type's options do nothing: say so (a `type: memory` with
    // `max_size: 1GiB` holds 10000 events, not a gigabyte).
    s.Validate([](const BufferConfig& c, const YAML::Node& node, const ParseContext& ctx) {
      if (!node.IsDefined() || !node.IsMap()) return;
      const bool memory = c.type == "memory";
      for (const char* key : memory ? std::vector<const char*>{"max_size", "flush_interval_ms"}
                                    : std::vector<const char*>{"max_events", "max_bytes"})
        if (node[key].IsDefined())
          ctx.Warning(node[key], "`" + ctx.Child(key).path + "` does nothing for a " + c.type + " buffer",
                      memory ? "a memory buffer's limits are `max_events` and `max_bytes`; `type: disk` for a disk buffer"
                             : "a disk buffer's limit is `max_size`");
    });
    return s;
  }();
  return s;
}

const Schema<ApiConfig>& ApiConfig::schema() {
  static const Schema<ApiConfig> s = [] {
    Schema<ApiConfig> s;
    s.Field("enabled", &ApiConfig::enabled, "Serve GET /metrics, /health and /ready.");
    s.Field("address", &ApiConfig::address, "host:port to listen on (port 0 picks a free port).")
        .Check<std::string>([](const std::string& a) -> std::string {
          auto colon = a.rfind(':');
          if (colon == std::string::npos || colon + 1 == a.size()) return "must be host:port, e.g. 127.0.0.1:8686";
          const std::string port = a.substr(colon + 1);
          if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
            return "the port must be a number from 0 to 65535";
          std::string host = a.substr(0, colon);
          if (host.empty()) return "the host is missing: write 0.0.0.0:" + port + " to listen on every interface";
          if (host == "localhost") return "";
          in6_addr addr6;
          in_addr addr4;
          if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
            if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &addr6) == 1) return "";
          } else if (inet_pton(AF_INET, host.c_str(), &addr4) == 1) {
            return "";
          } else if (inet_pton(AF_INET6, host.c_str(), &addr6) == 1) {
            return "an IPv6 address goes in brackets: [" + host + "]:" + port;
          }
          return "the host must be an IP address (or localhost), e.g. 127.0.0.1, 0.0.0.0 or [::1]";
        });
    return s;
  }();
  return s;
}

const Schema<LogConfig>& LogConfig::schema() {
  static const Schema<LogConfig> s = [] {
    Schema<LogConfig> s;
    s.Field("level", &LogConfig::level, "The agent's own log level (stderr); --log-level overrides it.")
        .OneOf({"trace", "debug", "info", "warn", "error", "off"});
    s.Field("format", &LogConfig::format, "The agent's own log format, one record per line: `text` (time, level, [component], message; newlines, tabs, other control bytes and bytes that are not UTF-8 in a message are written as `\\n`, `\\t` and `\\xNN`) or `json` (one object per line, fields timestamp, level, component_id, message).").OneOf({"text", "json"});
    return s;
  }();
  return s;
}

const Schema<GlobalConfig>& GlobalConfig::schema() {
  static const Schema<GlobalConfig> s = [] {
    Schema<GlobalConfig> s;
    s.Field("data_dir", &GlobalConfig::data_dir, "Directory for checkpoints and disk buffers; must be writable. The file and journald sources and disk buffers check at start that they can make files in their part of it, and the agent exits with 78 if not. One agent at a time: a running agent locks it, and a second one on the same data_dir exits with 78 (it would overwrite the first one's checkpoints). A reload keeps the data_dir the agent started with.")
        .Check<std::string>([](const std::string& d) { return d.empty() ? std::string("must not be empty") : ""; });
    s.Field("api", &GlobalConfig::api, "The admin HTTP API.");
    s.Field("shutdown_timeout_secs", &GlobalConfig::shutdown_timeout_secs, "On SIGTERM/SIGINT (and for the old pipeline's drain in a reload): how long the whole stop may take. The drain gets all but the last min(2 s, half of it), which is kept for stopping hard: giving up what is still in memory and leaving behind a sink thread stuck in I/O.").Min(0);
    s.Field("log", &GlobalConfig::log, "The agent's own logs.");
    s.Validate([](const GlobalConfig& c, const YAML::Node& node, const ParseContext& ctx) {
      if (node.IsMap() && node["data_dir"].IsDefined())
        WarnIfRelative(node["data_dir"], c.data_dir, ctx.Child("data_dir"));
    });
    return s;
  }();
  return s;
}

std::vector<std::string> ComponentConfig::OutputNames() const {
  if (outputs.empty()) return {id};
  std::vector<std::string> names;
  names.reserve(outputs.size());
  for (const auto& o : outputs) names.push_back(id + "." + o);
  return names;
}

const ComponentConfig* Config::Find(std::string_view id) const {
  for (const auto& c : components)
    if (c.id == id) return &c;
  return nullptr;
}

// ---- Environment interpolation ----------------------------------------------

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

// Whether YAML reads `v`, written unquoted as a whole value, back as
// exactly `v` (as a string, number or bool); "" and a value that opens a
// list or map also count, those are meant as YAML.
bool ReadsBackAsPlain(std::string_view v, bool in_flow) {
  if (v.empty() || v.front() == '[' || v.front() == '{') return true;
  if (v == "~" || v == "null" || v == "Null" || v == "NULL") return false;
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  if (blank(v.front()) || blank(v.back()) || v.back() == ':') return false;
  if (std::string_view("!&*|>'\"%@`#,]}").find(v.front()) != std::string_view::npos) return false;
  if ((v.front() == '-' || v.front() == '?' || v.front() == ':') && (v.size() == 1 || blank(v[1]))) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == ':' && i + 1 < v.size() && blank(v[i + 1])) return false;
    if (c == '#' && blank(v[i - 1])) return false;
    if (in_flow && std::string_view(",[]{}").find(static_cast<char>(c)) != std::string_view::npos) return false;
  }
  return true;
}

// `v` as the inside of a double-quoted YAML scalar.
std::string EscapeDoubleQuoted(std::string_view v) {
  std::string out;
  for (char c : v) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// A reference, as written in the file:
//
//   reference = "${" name [ op word ] "}"
//   name      = ( letter | "_" ) { letter | digit | "_" }
//   op        = ":-" | "-" | ":?" | "?"
//   word      = { "$$" | reference | any character but "}" and newline }
//
// The word (a default or a message) is interpolated in turn, as bash and
// Docker Compose do, and only when it is used: `${A:-${B:-x}}` is A, else B,
// else x. A reference ends on its own line.

// The position of the `}` that closes the reference starting at `text[i]`
// ("${"), or npos if the line ends first.
size_t ReferenceEnd(std::string_view text, size_t i) {
  int depth = 0;
  for (size_t j = i; j < text.size(); ++j) {
    const char c = text[j];
    if (c == '\n') break;
    if (c == '$' && j + 1 < text.size() && (text[j + 1] == '$' || text[j + 1] == '{')) {
      if (text[j + 1] == '{') ++depth;
      ++j;
    } else if (c == '}' && --depth == 0) {
      return j;
    }
  }
  return std::string_view::npos;
}

// Resolves references on one line of `text`, reporting errors at their
// place in the file. Lives for one top-level reference.
struct ReferenceResolver {
  std::string_view text;
  std::string_view file;
  int line;
  size_t line_start;
  const EnvLookup& env;
  Diagnostics* diag;

  Location At(size_t pos) const { return Location{std::string(file), line, static_cast<int>(pos - line_start) + 1}; }

  // text[begin, end) with `$$` and references replaced; nullopt after an error.
  std::optional<std::string> Expand(size_t begin, size_t end) const {
    std::string out;
    for (size_t j = begin; j < end; ++j) {
      if (text[j] == '$' && j + 1 < end && text[j + 1] == '$') {
        out.push_back('$');
        ++j;
      } else if (text[j] == '$' && j + 1 < end && text[j + 1] == '{') {
        const size_t close = ReferenceEnd(text, j);  // within [j, end): the outer reference is balanced
        std::string name;
        std::optional<std::string> v = Resolve(j, close, &name);
        if (!v.has_value()) return std::nullopt;
        out += *v;
        j = close;
      } else {
        out.push_back(text[j]);
      }
    }
    return out;
  }

  // The value of the reference text[i, close]; `*name` is its variable.
  std::optional<std::string> Resolve(size_t i, size_t close, std::string* name) const {
    const std::string_view body = text.substr(i + 2, close - i - 2);
    std::string op;
    size_t arg_begin = close;
    const size_t sep = body.find_first_of(":-?");
    *name = std::string(body.substr(0, sep));
    if (sep != std::string_view::npos) {
      if (body.substr(sep, 2) == ":-" || body.substr(sep, 2) == ":?") {
        op = std::string(body.substr(sep, 2));
      } else if (body[sep] == '-' || body[sep] == '?') {
        op = std::string(1, body[sep]);
      } else {
        op = "bad";
      }
      arg_begin = i + 2 + sep + op.size();
    }
    bool valid_name = !name->empty() && !std::isdigit(static_cast<unsigned char>((*name)[0]));
    for (char nc : *name) valid_name = valid_name && (std::isalnum(static_cast<unsigned char>(nc)) || nc == '_');
    if (!valid_name || op == "bad") {
      diag->Error(At(i), "invalid environment variable reference `${" + std::string(body) + "}`",
                  "use ${NAME}, ${NAME:-default} or ${NAME:?message}");
      return std::nullopt;
    }
    std::optional<std::string> value = env(*name);
    const bool empty_counts_unset = op.size() == 2;  // ":-" and ":?" treat empty as unset
    const bool unset = !value.has_value() || (empty_counts_unset && value->empty());
    if ((op == ":-" || op == "-") && unset) return Expand(arg_begin, close);
    if ((op == ":?" || op == "?") && unset) {
      std::optional<std::string> message = Expand(arg_begin, close);
      if (!message.has_value()) return std::nullopt;
      diag->Error(At(i), "environment variable " + *name + " is required: " +
                             (message->empty() ? std::string("not set") : *message));
      return std::nullopt;
    }
    if (!value.has_value()) {
      diag->Error(At(i), "environment variable " + *name + " is not set",
                  "set it, or give a default: ${" + *name + ":-value}");
      return std::nullopt;
    }
    return value;
  }
};

}  // namespace

// Interpolation inserts a value so that YAML reads back exactly the
// variable's value: escaped inside double quotes, `'` doubled inside single
// quotes, and quoted when it stands unquoted as a whole value that YAML
// would read otherwise (a `#`, `: `, a leading `*`...). To know which, the
// text is followed as YAML's scanner would: quoted scalars (they start a
// value and may span lines), flow brackets, comments (never interpolated)
// and `|`/`>` block scalars (their lines are text: values go in as they are).
std::string Interpolate(std::string_view text, std::string_view file, const EnvLookup& env, Diagnostics* diag,
                        std::vector<Substitution>* subs) {
  struct Interpolating {
    Diagnostics* diag;
    explicit Interpolating(Diagnostics* d) : diag(d) { diag->SetInterpolating(true); }
    ~Interpolating() { diag->SetInterpolating(false); }
  } interpolating(diag);
  std::string out;
  out.reserve(text.size());
  int line = 1;
  size_t line_start = 0, out_line_start = 0;
  char quote = 0;         // inside a '...' or "..." scalar
  int flow = 0;           // depth of [ ] and { }
  bool value_start = true;  // the next non-blank character starts a value
  bool comment = false;     // the rest of the line is a comment
  int indent = 0;           // of this line
  int block_parent = -1;    // a `|`/`>` scalar follows: the indentation of its key
  int block_indent = -1;    // inside one: lines indented more than this are its text
  bool block_line = false;  // this line is a block scalar's text
  auto at = [&](size_t pos) {
    return Location{std::string(file), line, static_cast<int>(pos - line_start) + 1};
  };
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  auto begin_line = [&](size_t pos) {
    size_t j = pos;
    while (j < text.size() && text[j] == ' ') ++j;
    indent = static_cast<int>(j - pos);
    const bool empty = j >= text.size() || text[j] == '\n' || text[j] == '\r';
    if (block_parent >= 0) block_indent = block_parent, block_parent = -1;
    if (block_indent >= 0 && !empty && indent <= block_indent) block_indent = -1;
    block_line = block_indent >= 0;
    value_start = quote == 0;
    comment = false;
  };
  begin_line(0);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      out.push_back(c);
      ++line;
      line_start = i + 1;
      out_line_start = out.size();
      begin_line(line_start);
      continue;
    }
    if (comment) {
      out.push_back(c);
      continue;
    }
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      value_start = false;
      continue;
    }
    if (c != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
      // Follow the YAML around the references.
      if (block_line) {
      } else if (quote == '"') {
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          out.push_back(c);
          out.push_back(text[++i]);
          continue;
        }
        if (c == '"') quote = 0;
      } else if (quote == '\'') {
        if (c == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
          out += "''";
          ++i;
          continue;
        }
        if (c == '\'') quote = 0;
      } else if (c == '#' && (i == line_start || blank(text[i - 1]))) {
        comment = true;
      } else if (blank(c)) {
        out.push_back(c);
        continue;  // value_start holds across blanks
      } else if (value_start && (c == '"' || c == '\'')) {
        quote = c;
      } else if (value_start && flow == 0 && (c == '|' || c == '>')) {
        block_parent = indent;
      } else if (c == '[' || c == '{') {
        ++flow;
        out.push_back(c);
        value_start = true;
        continue;
      } else if (flow > 0 && (c == ']' || c == '}')) {
        --flow;
      } else if (flow > 0 && c == ',') {
        out.push_back(c);
        value_start = true;
        continue;
      } else if ((c == ':' || (value_start && (c == '-' || c == '?'))) &&
                 (i + 1 >= text.size() || blank(text[i + 1]) || text[i + 1] == '\n' || text[i + 1] == '\r')) {
        out.push_back(c);
        value_start = true;
        continue;
      }
      out.push_back(c);
      value_start = false;
      continue;
    }
    const size_t close = ReferenceEnd(text, i);
    if (close == std::string_view::npos) {
      diag->Error(at(i), "unterminated `${` in environment variable reference", "write `${NAME}`, or `$$` for a literal `$`");
      diag->MarkUnresolved(std::string(file), line);
      out.push_back(c);
      continue;
    }
    const size_t ref_begin = i;
    const bool whole_value = value_start && quote == 0 && !block_line;
    value_start = false;
    i = close;
    std::string name;
    std::optional<std::string> resolved = ReferenceResolver{text, file, line, line_start, env, diag}.Resolve(ref_begin, close, &name);
    // A reference that failed (its error given) leaves an empty string, on
    // its own line: what the schema says about that value is dropped.
    auto unresolved = [&] {
      diag->MarkUnresolved(std::string(file), line);
      if (whole_value) out += "\"\"";
    };
    if (!resolved.has_value()) {
      unresolved();
      continue;
    }
    std::string result = std::move(*resolved);
    if (result.find('\n') != std::string::npos) {
      diag->Error(at(ref_begin), "environment variable " + name + " contains a newline, which is not allowed in a config value");
      unresolved();
      continue;
    }
    // The value alone, unquoted: does the rest of the line end it?
    auto ends_value = [&] {
      size_t j = close + 1;
      while (j < text.size() && blank(text[j])) ++j;
      if (j >= text.size() || text[j] == '\n' || text[j] == '\r') return true;
      if (text[j] == '#' && j > close + 1) return true;
      if (text[j] == ':' && (j + 1 >= text.size() || blank(text[j + 1]) || text[j + 1] == '\n')) return true;
      return flow > 0 && (text[j] == ',' || text[j] == ']' || text[j] == '}');
    };
    std::string inserted;
    if (quote == '"') {
      inserted = EscapeDoubleQuoted(result);
    } else if (quote == '\'') {
      for (char rc : result) inserted += rc == '\'' ? std::string("''") : std::string(1, rc);
    } else if (whole_value && !ReadsBackAsPlain(result, flow > 0) && ends_value()) {
      inserted = '"' + EscapeDoubleQuoted(result) + '"';
    } else {
      inserted = std::move(result);
    }
    if (subs != nullptr)
      subs->push_back({line, static_cast<int>(out.size() - out_line_start) + 1, static_cast<int>(inserted.size()),
                       static_cast<int>(ref_begin - line_start) + 1, static_cast<int>(close + 1 - ref_begin), name,
                       inserted});
    out += inserted;
  }
  return out;
}

// ---- Loading ---------------------------------------------------------------

namespace {

// The whole of a config file, also one that stat cannot size (a pipe:
// `-c <(envsubst < t.yaml)`); false with errno set when it cannot be
// opened or read (a read error is not an empty file).
bool ReadConfigFile(const std::string& file, std::string* out) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      errno = e;
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace

std::vector<std::string> ExpandConfigPaths(const std::vector<std::string>& paths, Diagnostics* diag) {
  std::vector<std::string> files;
  std::set<std::string> seen;  // a file named twice (-c a.yaml -c a.yaml, or -c conf.d -c conf.d/a.yaml) is read once
  auto add = [&](const std::string& f) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(f, ec);
    if (seen.insert(ec ? f : canonical.string()).second) files.push_back(f);
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> in_dir;
      // Hidden files are skipped, as a shell's `*.yaml` skips them: editors
      // and config tools leave them (`.app.yaml.swp`, `.#app.yaml`).
      fs::directory_iterator it(p, ec);
      if (ec) {
        diag->Error(Location{p, 0, 0}, "cannot read config directory: " + ec.message());
        continue;
      }
      for (const auto& entry : it) {
        const std::string name = entry.path().filename().string();
        auto ext = entry.path().extension().string();
        if (name.starts_with(".")) continue;
        if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml")) in_dir.push_back(entry.path().string());
      }
      std::sort(in_dir.begin(), in_dir.end());
      if (in_dir.empty())
        diag->Error(Location{p, 0, 0}, "directory holds no *.yaml or *.yml files", "files whose names begin with a dot are skipped");
      for (const auto& f : in_dir) add(f);
    } else {
      add(p);
    }
  }
  return files;
}

namespace {

const std::vector<std::string> kTopLevelKeys = {"data_dir", "api", "shutdown_timeout_secs", "log",
                                                "sources", "transforms", "sinks", "tests"};
const std::vector<std::string> kGlobalKeys = {"data_dir", "api", "shutdown_timeout_secs", "log"};

struct PendingComponent {
  std::string id;
  ComponentKind kind;
  YAML::Node key;
  YAML::Node node;
  std::string file;
};

// The innermost `open` bracket (`{` or `[`; 0 for either) still open at
// (line, column) of `text` (1-based); quoted strings and comments are
// skipped. Returns the bracket followed by its "line:column", or "".
std::string OpenBracket(std::string_view text, int line, int column, char open) {
  struct Open {
    char c;
    int line, column;
  };
  std::vector<Open> stack;
  int l = 1, c = 1;
  char quote = 0;
  bool comment = false;
  for (size_t i = 0; i < text.size() && (l < line || (l == line && c < column)); ++i) {
    const char ch = text[i];
    if (ch == '\n') {
      ++l;
      c = 1;
      comment = false;
      continue;
    }
    if (comment) {
    } else if (quote) {
      if (ch == '\\' && quote == '"') ++i, ++c;
      else if (ch == quote) quote = 0;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
    } else if (ch == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      comment = true;
    } else if (ch == '{' || ch == '[') {
      stack.push_back({ch, l, c});
    } else if ((ch == '}' || ch == ']') && !stack.empty()) {
      stack.pop_back();
    }
    ++c;
  }
  for (auto it = stack.rbegin(); it != stack.rend(); ++it)
    if (open == 0 || it->c == open) return it->c + std::to_string(it->line) + ":" + std::to_string(it->column);
  return "";
}

// The substituted value that went in as YAML (it starts with `[` or `{`)
// and holds (line, column) of the interpolated text, or null.
const Substitution* YamlValueAt(const std::vector<Substitution>& subs, int line, int column) {
  for (const Substitution& s : subs)
    if (s.line == line && column >= s.column && column < s.column + s.length && !s.value.empty() &&
        (s.value.front() == '[' || s.value.front() == '{'))
      return &s;
  return nullptr;
}

std::string SyntaxHint(const std::string& msg, std::string_view text, int line, int column);

// How to fix the YAML syntax errors people make most in configs. A
// bracket a variable's value brought in (a password starting with `[`) is
// not in the file: that is said instead, naming the variable.
std::string SyntaxHint(const std::string& msg, std::string_view text, int line, int column,
                       const std::vector<Substitution>& subs) {
  const Substitution* in = YamlValueAt(subs, line, column);
  int first_line = line;  // of the innermost bracket still open
  for (char open : {'[', '{'}) {
    if (in != nullptr) break;
    const std::string at = OpenBracket(text, line, column, open);
    if (at.empty()) continue;
    const size_t colon = at.find(':');
    const int at_line = std::stoi(at.substr(1, colon - 1));
    first_line = std::min(first_line, at_line);
    in = YamlValueAt(subs, at_line, std::stoi(at.substr(colon + 1)));
  }
  // Else a value that went in as YAML between that bracket and the error
  // (`{s3cr3t` closed by the `}` meant for its map) is the likely cause.
  for (const Substitution& s : subs)
    if (in == nullptr && s.line >= first_line && s.line <= line && YamlValueAt(subs, s.line, s.column) == &s) in = &s;
  if (in != nullptr)
    return "the value of `${" + in->name + "}` starts with `" + in->value.front() +
           "`, so it is read as YAML (a " + (in->value.front() == '[' ? "list" : "map") +
           "); if it is text, quote it: \"${" + in->name + "}\"";
  return SyntaxHint(msg, text, line, column);
}

// How to fix the YAML syntax errors people make most in configs.
std::string SyntaxHint(const std::string& msg, std::string_view text, int line, int column) {
  auto line_text = [&](int n) {
    size_t start = 0;
    for (int i = 1; i < n && start != std::string_view::npos; ++i) {
      start = text.find('\n', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos || start > text.size()) return std::string_view();
    return text.substr(start, text.find('\n', start) - start);
  };
  for (int n : {line, line - 1}) {
    std::string_view t = line_text(n);
    size_t lead = t.find_first_not_of(" \t");
    if (n > 0 && t.substr(0, lead).find('\t') != std::string_view::npos)
      return "line " + std::to_string(n) + " is indented with a tab: YAML indents with spaces only";
  }
  if (msg == YAML::ErrorMsg::END_OF_MAP_FLOW || msg == YAML::ErrorMsg::END_OF_SEQ_FLOW) {
    const bool map = msg == YAML::ErrorMsg::END_OF_MAP_FLOW;
    std::string at = OpenBracket(text, line, column, map ? '{' : '[');
    return std::string("close the `") + (map ? "{" : "[") + "`" + (at.empty() ? "" : " opened at " + at.substr(1)) +
           " with `" + (map ? "}" : "]") + "`";
  }
  if (msg == YAML::ErrorMsg::FLOW_END) {
    std::string at = OpenBracket(text, line, column, 0);
    if (at.empty()) return "this bracket closes nothing: `{` pairs with `}` and `[` with `]`";
    return std::string("close the `") + at[0] + "` opened at " + at.substr(1) + " with `" + (at[0] == '{' ? "}" : "]") +
           "` first";
  }
  if (msg == YAML::ErrorMsg::END_OF_MAP || msg == YAML::ErrorMsg::END_OF_SEQ)
    return "the keys of one map, and the `-` items of one list, start in the same column: check this line's "
           "indentation against the lines above";
  if (msg.rfind(YAML::ErrorMsg::INVALID_ESCAPE, 0) == 0)
    return "inside double quotes a backslash starts an escape: write regular expressions in single quotes "
           "('^\\d+$') or double each backslash";
  if (msg == YAML::ErrorMsg::MAP_VALUE) {
    // `type:console`: without a space after the colon the line is one
    // string, and the error comes at the next line's `key:`.
    static const RE2 kNoSpace(R"(\s*-?\s*([A-Za-z_][A-Za-z0-9_.-]*):([^\s/:][^\s]*)\s*)");
    for (int n : {line - 1, line}) {
      std::string key, value;
      const std::string_view t = line_text(n);
      if (n > 0 && RE2::FullMatch(re2::StringPiece(t.data(), t.size()), kNoSpace, &key, &value))
        return "line " + std::to_string(n) + ": `" + key + ":" + value + "` needs a space after the colon (`" + key +
               ": " + value + "`); without one YAML reads the line as one string";
    }
    return "quote a value that contains `: ` (msg: \"error: bad\"), or check the indentation";
  }
  if (msg == YAML::ErrorMsg::UNKNOWN_TOKEN) {
    const std::string_view t = line_text(line);
    const size_t at = column > 0 ? static_cast<size_t>(column - 1) : 0;
    if (at < t.size() && (t[at] == '@' || t[at] == '`'))
      return std::string("`") + t[at] + "` is reserved in YAML and cannot start a plain value: quote it ('" +
             std::string(t.substr(at, t.find_first_of(" \t#,]}", at) - at)) + "')";
  }
  if (msg.rfind(YAML::ErrorMsg::UNKNOWN_ANCHOR, 0) == 0) {
    const std::string_view t = line_text(line);
    const size_t at = column > 0 ? static_cast<size_t>(column - 1) : 0;
    std::string name;
    if (at < t.size() && t[at] == '*') name = std::string(t.substr(at + 1, t.find_first_of(" \t#,]}", at) - at - 1));
    return "no `&" + name +
           "` comes before it in this file: an alias (`*name`) names an anchor (`&name`) written above it in the same "
           "file; anchors do not reach across files (use an `x-` key in each file, or one file)";
  }
  if (msg == YAML::ErrorMsg::BAD_FILE)  // what yaml-cpp says when nesting exceeds its depth limit
    return "maps and lists nest too deeply here to be read: a config needs a few levels";
  if (msg == YAML::ErrorMsg::EOF_IN_SCALAR) return "a quoted string is never closed";
  return "";
}

// A node's content without its style: flow `{a: 1}` and block `a: 1`,
// quoted and plain scalars, compare equal.
std::string Canonical(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  std::string s;
  if (n.IsMap()) {
    s = "{";
    for (auto it = n.begin(); it != n.end(); ++it) s += Canonical(it->first) + ":" + Canonical(it->second) + ",";
    return s + "}";
  }
  if (n.IsSequence()) {
    s = "[";
    for (const auto& item : n) s += Canonical(item) + ",";
    return s + "]";
  }
  return "~";
}

void CheckDuplicateKeys(const YAML::Node& node, const std::string& file, Diagnostics* diag) {
  if (node.IsMap()) {
    std::map<std::string, Location> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string k = it->first.Scalar();
      if (auto [first, inserted] = seen.try_emplace(k, LocationOf(it->first, file)); !inserted)
        diag->Error(LocationOf(it->first, file), "duplicate key `" + k + "`",
                    "first at " + first->second.ToString() + "; YAML keeps only one of them");
      CheckDuplicateKeys(it->second, file, diag);
    }
  } else if (node.IsSequence()) {
    for (const auto& child : node) CheckDuplicateKeys(child, file, diag);
  }
}

// A quoted value whose closing quote is missing runs on over the lines
// after it (YAML folds them into its text), up to the next quote or the
// end of the file: the config then "has no sources". A quoted value whose
// next line, inside the quotes, looks like a `key:` is reported at its
// opening quote. Returns whether one was found.
bool CheckRunawayQuotes(const YAML::Node& node, std::string_view text, const std::string& file, Diagnostics* diag) {
  static const RE2 kKeyLine(R"(\s*-?\s*[A-Za-z_][A-Za-z0-9_.-]*:(\s.*)?)");
  bool found = false;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) found |= CheckRunawayQuotes(it->second, text, file, diag);
  } else if (node.IsSequence()) {
    for (const auto& child : node) found |= CheckRunawayQuotes(child, text, file, diag);
  } else if (node.IsScalar() && node.Tag() == "!") {
    const size_t open = static_cast<size_t>(std::max(0, node.Mark().pos));
    if (open >= text.size() || (text[open] != '"' && text[open] != '\'')) return false;
    const char q = text[open];
    size_t i = open + 1;
    for (; i < text.size() && text[i] != q; ++i) {
      if (q == '"' && text[i] == '\\') ++i;
      if (text[i] == '\n') break;
    }
    if (i >= text.size() || text[i] != '\n') return false;  // closed on its own line
    const size_t next = i + 1;
    const std::string_view line = text.substr(next, text.find('\n', next) - next);
    if (RE2::FullMatch(re2::StringPiece(line.data(), line.size()), kKeyLine)) {
      diag->Error(LocationOf(node, file), "this quoted value is not closed on its line, and runs on into the next ones",
                  "close the quote on this line");
      found = true;
    }
  }
  return found;
}

// YAML 1.1 merge keys, which yaml-cpp reads as a plain key named `<<`:
// `<<: *defaults` (or a list of aliases) copies the keys of the map(s) it
// names that the map does not set itself, the first map listed winning.
// Errors in a merged value point at the anchored map, where it is written.
void ExpandMergeKeys(YAML::Node node, const std::string& file, Diagnostics* diag, int depth = 0) {
  if (depth > 64) return;  // aliases nested this deep: left as they are
  if (node.IsSequence()) {
    for (auto child : node) ExpandMergeKeys(child, file, diag, depth + 1);
    return;
  }
  if (!node.IsMap()) return;
  YAML::Node merge, merge_key;
  bool has_merge = false;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "<<" && it->first.Tag() != "!") {
      merge = it->second;
      merge_key = it->first;
      has_merge = true;
    } else {
      ExpandMergeKeys(it->second, file, diag, depth + 1);
    }
  }
  if (!has_merge) return;
  std::vector<YAML::Node> sources;
  if (merge.IsSequence())
    for (const auto& m : merge) sources.push_back(m);
  else
    sources.push_back(merge);
  node.remove("<<");
  bool reported = false;  // at the `<<`: where the alias is, not the anchored node's items
  for (const auto& m : sources) {
    if (!m.IsMap()) {
      if (!reported)
        diag->Error(LocationOf(merge_key, file), "a merge key `<<` takes a map, or a list of maps, such as `<<: *defaults`",
                    merge.IsSequence() ? "it names a list whose items are not all maps"
                    : m.IsNull()        ? "it names nothing"
                                        : "it names a single value");
      reported = true;
      continue;
    }
    ExpandMergeKeys(m, file, diag, depth + 1);
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::string key = it->first.Scalar();
      // The key node itself, so an unknown merged option points at its line.
      if (!std::as_const(node)[key].IsDefined()) node.force_insert(it->first, it->second);
    }
  }
}

// The longest id: it names a directory under data_dir (a file name is at
// most 255 bytes), with room for what a component adds to it.
constexpr size_t kMaxIdBytes = 200;

// An id that cannot name a directory or be written in an input: empty, or
// with a dot, slash, space or control character (not its length).
bool InvalidId(std::string_view id) {
  const bool control =
      std::any_of(id.begin(), id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  return id.empty() || id.find_first_of(". \t/\\") != std::string_view::npos || control;
}

const char* KindSection(ComponentKind k) {
  switch (k) {
    case ComponentKind::kSource: return "sources";
    case ComponentKind::kTransform: return "transforms";
    case ComponentKind::kSink: return "sinks";
  }
  return "";
}

// What to write instead of a type name that Vector, Fluent Bit or Filebeat
// uses for the same job, or "".
std::string OtherShippersType(ComponentKind kind, std::string_view type) {
  struct Alias {
    ComponentKind kind;
    std::string_view names;  // space-separated
    std::string_view hint;
  };
  static const Alias kAliases[] = {
      {ComponentKind::kSource, " tail filestream log logfile files ", "tributary's source for tailing files is `file`"},
      {ComponentKind::kSource, " systemd journal ", "tributary's source for the systemd journal is `journald`"},
      {ComponentKind::kSource, " dummy demo generator ", "tributary's generator of sample events is `demo_logs`"},
      {ComponentKind::kTransform, " remap lua wasm ",
       "tributary has no scripting transform: use add_fields, remove_fields, rename_fields, filter, route, "
       "regex_parser, json_parser or timestamp_parser"},
      {ComponentKind::kTransform, " grok parser regex ", "tributary parses with `regex_parser` (RE2 named groups)"},
      {ComponentKind::kTransform, " json decode_json_fields ", "tributary parses JSON with `json_parser`"},
      {ComponentKind::kTransform, " modify record_modifier add_field ", "tributary adds fields with `add_fields`"},
      {ComponentKind::kTransform, " grep drop_event ", "tributary keeps or drops events with `filter`"},
      {ComponentKind::kTransform, " throttle ", "tributary keeps a share of events with `sample`"},
      {ComponentKind::kTransform, " rewrite_tag ", "tributary sends events to named outputs with `route`"},
      {ComponentKind::kSink, " es opensearch ", "tributary's Elasticsearch sink is `elasticsearch`"},
      {ComponentKind::kSink, " stdout ", "tributary writes to standard output with `console`"},
      {ComponentKind::kSink, " null ", "tributary discards events with `blackhole`"},
  };
  const std::string padded = " " + std::string(type) + " ";
  for (const Alias& a : kAliases)
    if (a.kind == kind && a.names.find(padded) != std::string_view::npos) return std::string(a.hint);
  return "";
}

bool ParseComponent(const PendingComponent& pending, ComponentConfig* out, Diagnostics* diag) {
  const PendingComponent& p = pending;  // const access: missing keys read as undefined
  ParseContext ctx{diag, p.file, std::string(KindSection(p.kind)) + "." + p.id};
  out->id = p.id;
  out->kind = p.kind;
  out->location = LocationOf(p.key, p.file);
  if (InvalidId(p.id)) {
    std::string shown;  // a control character shown as \xNN, not written to the terminal
    for (char c : p.id) {
      if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
        shown += c;
        continue;
      }
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      shown += buf;
    }
    ctx.Error(p.key, "invalid component id `" + shown + "`",
              "ids may not be empty or hold dots, slashes, spaces or control characters: dots name route "
              "outputs, and an id names directories under data_dir");
  } else if (p.id.size() > kMaxIdBytes) {
    ctx.Error(p.key, "component id `" + p.id.substr(0, 40) + "...` is " + std::to_string(p.id.size()) + " bytes long",
              "ids are at most " + std::to_string(kMaxIdBytes) + " bytes: an id names directories under data_dir");
  }
  if (!p.node.IsMap()) {
    ctx.Error(p.node.IsDefined() && !p.node.IsNull() ? p.node : p.key,
              "component `" + p.id + "` must be a map with at least `type`");
    return false;
  }
  // The inputs first: a component whose type is wrong still uses them, so
  // they are not reported as unused as well.
  bool ok = true;
  if (p.kind != ComponentKind::kSource) {
    YAML::Node inputs = p.node["inputs"];
    if (!inputs.IsDefined() || (inputs.IsSequence() && inputs.size() == 0) || inputs.IsNull()) {
      ctx.Error(inputs.IsDefined() ? inputs : p.key,
                std::string(ComponentKindName(p.kind)) + " `" + p.id + "` has no inputs",
                "add `inputs: [<source or transform id>]`");
      ok = false;
    } else if (inputs.IsScalar()) {
      out->inputs.push_back(inputs.Scalar());
      out->input_locations.push_back(LocationOf(inputs, p.file));
    } else if (inputs.IsSequence()) {
      for (const auto& in : inputs) {
        if (!in.IsScalar()) {
          ctx.Error(in, "each input must be a component id");
          ok = false;
          continue;
        }
        if (std::find(out->inputs.begin(), out->inputs.end(), in.Scalar()) != out->inputs.end()) {
          ctx.Error(in, "`" + in.Scalar() + "` is listed twice in `inputs`", "each event would arrive twice: list it once");
          ok = false;
          continue;
        }
        out->inputs.push_back(in.Scalar());
        out->input_locations.push_back(LocationOf(in, p.file));
      }
    } else {
      ctx.Error(inputs, "`inputs` must be a list of component ids");
      ok = false;
    }
  }
  YAML::Node type = p.node["type"];
  const auto& registry = Registry::Get();
  if (!type.IsDefined()) {
    ctx.Error(p.key, "missing required option `" + ctx.path + ".type`",
              "one of: " + [&] {
                std::string s;
                for (const auto& n : registry.Names(p.kind)) s += (s.empty() ? "" : ", ") + n;
                return s;
              }());
    return false;
  }
  if (!type.IsScalar()) {
    ctx.Error(type, "`" + ctx.path + ".type` must be a string");
    return false;
  }
  out->type = type.Scalar();
  out->type_info = registry.Find(p.kind, out->type);
  if (out->type_info == nullptr) {
    auto names = registry.Names(p.kind);
    std::string near = ClosestMatch(out->type, names);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    // A known type of another kind is a common mistake: say so.
    std::string other;
    for (ComponentKind k : {ComponentKind::kSource, ComponentKind::kTransform, ComponentKind::kSink})
      if (k != p.kind && registry.Find(k, out->type)) other = ComponentKindName(k);
    const std::string elsewhere = OtherShippersType(p.kind, out->type);
    ctx.Error(type, "unknown " + std::string(ComponentKindName(p.kind)) + " type `" + out->type + "`",
              !other.empty() ? "`" + out->type + "` is a " + other + ", declare it under `" +
                                   (other == "source" ? "sources" : other == "sink" ? "sinks" : "transforms") + "`"
              : !elsewhere.empty() ? elsewhere
              : near.empty()       ? "known types: " + list
                                   : "did you mean `" + near + "`?");
    return false;
  }
  if (p.kind == ComponentKind::kSink) {
    if (!BufferConfig::schema().Parse(p.node["buffer"], &out->buffer, ctx.Child("buffer"))) ok = false;
  }
  out->options = out->type_info->parse(p.node, ctx);
  if (!out->options) return false;
  out->outputs = out->type_info->outputs(out->options.get());
  out->fingerprint = YAML::Dump(p.node);
  return ok;
}

// What the files wrote of sources and sinks beyond the components parsed,
// for "no sources defined": each reported already, or a better place.
struct Sections {
  // Per kind (source, transform, sink): a component written but refused (a
  // duplicate id, a section that is not a map, an unknown top-level key
  // taken for `sources`): "none defined" would say the wrong thing.
  bool explained[3] = {false, false, false};
  // Per kind: the `sources:` key written with nothing under it.
  std::optional<Location> empty[3];
};

void CheckGraph(Config* config, const Sections& sections, Diagnostics* diag) {
  // Valid input names: sources, transforms, and route outputs "id.name".
  // A component with named outputs sends nothing on its own id (as in
  // Vector): naming it would be an input that never carries an event.
  std::vector<std::string> valid;
  for (const auto& c : config->components) {
    if (c.kind == ComponentKind::kSink) continue;
    for (auto& name : c.OutputNames()) valid.push_back(std::move(name));
  }
  std::map<std::string, int> consumers;
  for (const auto& c : config->components) {
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const std::string& in = c.inputs[i];
      if (std::find(valid.begin(), valid.end(), in) != valid.end()) {
        consumers[in.substr(0, in.find('.'))]++;
        if (in == c.id) diag->Error(c.input_locations[i], "`" + c.id + "` lists itself as an input");
        continue;
      }
      // `ro.a` of a component whose own config has an error (reported
      // already): its outputs are unknown, so the name is not an error of
      // its own.
      const std::string prefix = in.substr(0, in.find('.'));
      if (const ComponentConfig* up = config->Find(prefix);
          up != nullptr && up->kind != ComponentKind::kSink && up->options == nullptr && prefix != in) {
        consumers[prefix]++;
        continue;
      }
      const ComponentConfig* target = config->Find(in);
      if (target && target->kind == ComponentKind::kSink) {
        diag->Error(c.input_locations[i], "input `" + in + "` of `" + c.id + "` is a sink; sinks have no outputs");
        continue;
      }
      if (target && !target->outputs.empty()) {
        diag->Error(c.input_locations[i],
                    "input `" + in + "` of `" + c.id + "` names a " + target->type +
                        " itself, which sends every event to one of its named outputs and none on its own id",
                    "name the outputs to read: " + BacktickList(target->OutputNames()));
        consumers[in]++;  // reported here, not again as "not used"
        continue;
      }
      std::string near = ClosestMatch(in, valid);
      diag->Error(c.input_locations[i], "unknown input `" + in + "` in `" + c.id + "`",
                  near.empty() ? "inputs name a source or transform id" : "did you mean `" + near + "`?");
    }
  }
  // Cycles among transforms: depth-first search with colors.
  std::map<std::string, int> color;  // 0 white, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::function<void(const ComponentConfig&)> visit = [&](const ComponentConfig& c) {
    color[c.id] = 1;
    stack.push_back(c.id);
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      std::string in = c.inputs[i].substr(0, c.inputs[i].find('.'));
      const ComponentConfig* up = config->Find(in);
      if (!up || up->kind != ComponentKind::kTransform) continue;
      if (in == c.id) continue;  // reported above: lists itself as an input
      if (color[in] == 1) {
        // The stack runs from consumers to their inputs: read it backwards
        // for the way events flow.
        std::string cycle = in;
        for (auto it = stack.rbegin(); it != stack.rend() && *it != in; ++it) cycle += " -> " + *it;
        cycle += " -> " + in;
        diag->Error(c.input_locations[i], "cycle in the topology: events flow " + cycle,
                    "a transform may not consume its own output, directly or indirectly");
      } else if (color[in] == 0) {
        visit(*up);
      }
    }
    stack.pop_back();
    color[c.id] = 2;
  };
  for (const auto& c : config->components)
    if (c.kind == ComponentKind::kTransform && color[c.id] == 0) visit(c);

  bool has_source = false, has_sink = false;
  for (const auto& c : config->components) {
    has_source |= c.kind == ComponentKind::kSource;
    has_sink |= c.kind == ComponentKind::kSink;
    if (c.kind != ComponentKind::kSink && consumers[c.id] == 0 && c.options != nullptr &&
        !InvalidId(c.id))  // a broken one, or an id reported already
      diag->Warning(c.location, std::string(ComponentKindName(c.kind)) + " `" + c.id + "` is not used by any transform or sink");
  }
  // Not about any line: the start of the last file, where a section may be added.
  const Location last{config->files.empty() ? "" : config->files.back(), 1, 1};
  for (auto [kind, have, name] : {std::tuple{ComponentKind::kSource, has_source, "sources"},
                                  std::tuple{ComponentKind::kSink, has_sink, "sinks"}}) {
    const size_t k = static_cast<size_t>(kind);
    if (have || sections.explained[k]) continue;
    if (sections.empty[k])
      diag->Error(*sections.empty[k], std::string("`") + name + "` has no components",
                  std::string("indent each component under `") + name + ":`, e.g. `  demo:` on the next line");
    else
      diag->Error(last, std::string("no ") + name + " defined", std::string("add a `") + name + ":` section");
  }
}

void AppendUtf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// A config saved as UTF-16 (Windows Notepad, PowerShell's `>`), told by its
// byte-order mark or, as YAML does, by a NUL in its first two bytes. yaml-cpp
// reads UTF-16, but `${VAR}` is looked for in the bytes, where a NUL stands
// between `$` and `{`: the variables were kept as text. Decoded to UTF-8
// first; any other text is returned as it is.
std::string DecodeUtf16(const std::string& raw) {
  if (raw.size() < 2) return raw;
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(raw[i])); };
  bool big_endian;
  size_t i = 0;
  if (b(0) == 0xFE && b(1) == 0xFF) big_endian = true, i = 2;
  else if (b(0) == 0xFF && b(1) == 0xFE) big_endian = false, i = 2;
  else if (b(0) == 0 && b(1) != 0) big_endian = true;
  else if (b(0) != 0 && b(1) == 0) big_endian = false;
  else return raw;
  const auto unit = [&](size_t k) { return big_endian ? (b(k) << 8 | b(k + 1)) : (b(k + 1) << 8 | b(k)); };
  std::string out;
  out.reserve(raw.size() / 2);
  for (; i + 1 < raw.size(); i += 2) {
    uint32_t c = unit(i);
    if (c >= 0xD800 && c < 0xDC00 && i + 3 < raw.size() && unit(i + 2) >= 0xDC00 && unit(i + 2) < 0xE000) {
      c = 0x10000 + ((c - 0xD800) << 10) + (unit(i + 2) - 0xDC00);
      i += 2;
    } else if (c >= 0xD800 && c < 0xE000) {
      c = 0xFFFD;  // a lone surrogate
    }
    AppendUtf8(c, &out);
  }
  return out;
}

// An alias (`*name`) repeats the node its anchor (`&name`) holds: ten levels
// of ten aliases make a file of a kilobyte expand to 10^10 nodes, which
// every walk over the config visits (a "billion laughs"). Real configs are
// far below the bound.
constexpr size_t kMaxNodes = 250000;
// yaml-cpp bounds how deep the text nests, but an alias inside the node it
// names (`a: &x { b: *x }`) nests without end, and every recursive walk
// over the config overflowed the stack.
constexpr int kMaxDepth = 256;

// Whether `node` expands to more nodes than *budget has left (counting it
// down) or nests deeper than kMaxDepth; *where is then the node at which
// it ran out, and *too_deep says which.
bool ExceedsNodes(const YAML::Node& node, size_t* budget, YAML::Node* where, bool* too_deep, int depth = 0) {
  if (*budget == 0 || depth > kMaxDepth) {
    *where = node;
    *too_deep = depth > kMaxDepth;
    return true;
  }
  --*budget;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      if (ExceedsNodes(it->first, budget, where, too_deep, depth + 1) ||
          ExceedsNodes(it->second, budget, where, too_deep, depth + 1))
        return true;
  } else if (node.IsSequence()) {
    for (const auto& child : node)
      if (ExceedsNodes(child, budget, where, too_deep, depth + 1)) return true;
  }
  return false;
}

// Records each empty value of a map (`key:` with nothing after it) whose
// place, the next token's, is not on its key's line (Diagnostics::AddEmptyValue).
void NoteEmptyValues(const YAML::Node& node, const std::string& file, Diagnostics* diag, int depth = 0) {
  if (depth > kMaxDepth) return;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node v = it->second;  // a copy: it->second is a temporary
      if (v.IsNull() && it->first.IsScalar() && v.Mark().line != it->first.Mark().line) {
        Location key_end = LocationOf(it->first, file);
        key_end.column += static_cast<int>(it->first.Scalar().size());  // at the `:`
        diag->AddEmptyValue(LocationOf(v, file), key_end);
      }
      NoteEmptyValues(v, file, diag, depth + 1);
    }
  } else if (node.IsSequence()) {
    for (const auto& child : node) NoteEmptyValues(child, file, diag, depth + 1);
  }
}

// Parses one config file's text: its one YAML document, or errors (a
// syntax error; a second document, which would be ignored; aliases that
// expand beyond kMaxNodes). nullopt if it cannot be used.
// Characters that make YAML misread a file while the user sees nothing
// wrong: a NUL byte (a binary or UTF-16 file), a carriage return that ends
// no line, and spaces or colons that look like the ASCII ones (pasted from
// a web page or a chat). yaml-cpp's own errors for them point elsewhere
// ("unknown escape character", a key of four "spaces"). Returns false if
// the file should not be parsed; a zero-width character only warns.
bool CheckInvisibleCharacters(std::string_view text, const std::string& file, Diagnostics* diag) {
  if (text.find('\r') != std::string_view::npos && text.find('\n') == std::string_view::npos) {
    diag->Error(Location{file, 1, 1}, "the lines of this file end with a carriage return (CR) only",
                "save it with LF line ends (Unix), or CR LF");
    return false;
  }
  struct Lookalike {
    std::string_view bytes;
    const char* name;
  };
  static constexpr Lookalike kSpaces[] = {
      {"\xC2\xA0", "a no-break space (U+00A0)"}, {"\xE3\x80\x80", "an ideographic space (U+3000)"},
      {"\xE2\x80\x83", "an em space (U+2003)"}, {"\xE2\x80\x82", "an en space (U+2002)"},
      {"\xE2\x80\xAF", "a narrow no-break space (U+202F)"}};
  static constexpr Lookalike kInvisible[] = {{"\xE2\x80\x8B", "a zero-width space (U+200B)"},
                                             {"\xE2\x80\x8C", "a zero-width non-joiner (U+200C)"},
                                             {"\xE2\x80\x8D", "a zero-width joiner (U+200D)"},
                                             {"\xE2\x81\xA0", "a word joiner (U+2060)"},
                                             {"\xEF\xBB\xBF", "a byte order mark (U+FEFF)"}};
  bool ok = true;
  int line = 1;
  size_t line_start = 0;
  bool indent = true;  // still in the line's leading whitespace
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // Made only for a report: a copy of the file name for every byte of a
    // large config was most of this scan's time.
    auto at = [&] { return Location{file, line, static_cast<int>(i - line_start) + 1}; };
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      indent = true;
      continue;
    }
    if (c == '\0') {
      diag->Error(at(), "a NUL byte: a config is text", "is this a binary file, or one saved as UTF-32?");
      return false;
    }
    if (c == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n')) {
      diag->Error(at(), "a carriage return (CR) that ends no line", "remove it: lines end with LF or CR LF");
      return false;
    }
    if (static_cast<unsigned char>(c) < 0x80) {
      // A space after `:` or `-` starts a value; a look-alike there (or in
      // the indentation) makes the line one string.
      if (c != ' ' && c != '\t') indent = false;
      continue;
    }
    const std::string_view rest = text.substr(i);
    const bool after_indicator = i > line_start && (text[i - 1] == ':' || text[i - 1] == '-');
    for (const Lookalike& l : kSpaces) {
      if (!rest.starts_with(l.bytes) || !(indent || after_indicator)) continue;
      diag->Error(at(), std::string("this line holds ") + l.name + (indent ? " in its indentation" : " after `" + std::string(1, text[i - 1]) + "`") +
                      ", which YAML does not read as a space",
                  "type a plain space instead; text pasted from a web page or a chat often brings them");
      ok = false;
    }
    if (rest.starts_with("\xEF\xBC\x9A")) {
      diag->Error(at(), "a full-width colon (U+FF1A), which YAML does not read as `:`", "type a plain `:`");
      ok = false;
    }
    for (const Lookalike& l : kInvisible)
      if (rest.starts_with(l.bytes) && i != 0)
        diag->Warning(at(), std::string("an invisible character here: ") + l.name, "delete it: a name that holds it differs from the one it looks like");
    indent = false;
  }
  return ok;
}

std::optional<YAML::Node> ParseDocument(const std::string& text, const std::string& file, Diagnostics* diag,
                                        const std::vector<Substitution>* subs) {
  if (!CheckInvisibleCharacters(text, file, diag)) return std::nullopt;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    Location loc{file, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0};
    diag->Error(loc, "YAML syntax error: " + e.msg, subs ? SyntaxHint(e.msg, text, loc.line, loc.column, *subs) : "");
    return std::nullopt;
  }
  // (A first document that is no map is not YAML meant for us: TOML, say,
  // which yaml-cpp reads as several documents. The caller says what it is.)
  const bool map_or_empty = docs.empty() || docs.front().IsMap() || docs.front().IsNull();
  for (size_t d = 1; map_or_empty && d < docs.size(); ++d) {
    if (!docs[d].IsDefined() || docs[d].IsNull()) continue;  // `---` with nothing after it
    diag->Error(LocationOf(docs[d], file), "a second YAML document (after `---`) in one file would be ignored",
                "a file holds one configuration: put this part in a file of its own and pass both "
                "(`-c a.yaml -c b.yaml`, or their directory), or remove the `---`");
    return std::nullopt;
  }
  YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
  size_t budget = kMaxNodes;
  YAML::Node where;
  bool too_deep = false;
  if (ExceedsNodes(root, &budget, &where, &too_deep)) {
    if (too_deep)
      diag->Error(LocationOf(where, file),
                  "this file nests deeper than " + std::to_string(kMaxDepth) + " levels",
                  "is an alias (`*name`) inside the node its anchor (`&name`) names? that node would contain itself");
    else
      diag->Error(LocationOf(where, file),
                  "this file expands to more than " + std::to_string(kMaxNodes) +
                      " YAML nodes through aliases (each `*name` repeats what `&name` holds)",
                  "write the values out, or anchor smaller pieces");
    return std::nullopt;
  }
  NoteEmptyValues(root, file, diag);
  return root;
}

}  // namespace

std::optional<Config> LoadConfigFromStrings(const std::vector<std::pair<std::string, std::string>>& files,
                                            Diagnostics* diag, const LoadOptions& options) {
  EnvLookup env = options.env ? options.env : ProcessEnv();
  Config config;
  std::map<std::string, std::pair<std::string, Location>> global_owner;  // key -> (dump, where)
  std::map<std::string, Location> id_owner;
  std::vector<PendingComponent> pending;
  std::vector<std::pair<std::string, YAML::Node>> globals;  // file -> map of its global keys
  bool unparsed = false;  // a file is not YAML: what it held is unknown
  Sections sections;

  for (const auto& [file, raw] : files) {
    config.files.push_back(file);
    std::vector<Substitution> subs;
    std::string text = Interpolate(DecodeUtf16(raw), file, env, diag, &subs);
    diag->AddSubstitutions(file, subs);
    std::optional<YAML::Node> parsed = ParseDocument(text, file, diag, &subs);
    if (!parsed) {
      unparsed = true;
      continue;
    }
    YAML::Node root = *parsed;
    if (root.IsNull() || !root.IsDefined()) continue;
    if (!root.IsMap()) {
      // Vector's TOML and Fluent Bit's classic format parse as a YAML
      // scalar or list: say what the file is.
      static const RE2 kSectionLine(R"((?m)^\[[A-Za-z0-9_.\-"]+\][ \t]*\r?$)");
      const bool foreign =
          file.ends_with(".toml") || file.ends_with(".conf") || RE2::PartialMatch(raw, kSectionLine);
      diag->Error(LocationOf(root, file), "the config must be a YAML map at the top level",
                  foreign ? "tributary reads YAML (sources:, transforms:, sinks:); TOML and Fluent Bit's classic "
                            "[SECTION] format are not read"
                          : "");
      unparsed = true;
      continue;
    }
    CheckDuplicateKeys(root, file, diag);
    if (CheckRunawayQuotes(root, text, file, diag)) {
      unparsed = true;  // what the rest of the file holds is unknown
      continue;
    }
    ExpandMergeKeys(root, file, diag);
    // A file that is not a config at all (`-c /etc/passwd`, a wrong file
    // in a conf.d): one error, not one per line echoing what it holds.
    size_t known = 0, unknown = 0;
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
      const bool ours = key.rfind("x-", 0) == 0 || std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), key) !=
                                                      kTopLevelKeys.end() || !ClosestMatch(key, kTopLevelKeys).empty();
      (ours ? known : unknown)++;
    }
    if (known == 0 && unknown > 3) {
      diag->Error(Location{file, 1, 1},
                  "this is not a tributary configuration: none of its " + std::to_string(unknown) +
                      " top-level keys is one of data_dir, api, shutdown_timeout_secs, log, sources, transforms, "
                      "sinks, tests",
                  "is it the file you meant to pass?");
      unparsed = true;
      continue;
    }
    YAML::Node file_globals(YAML::NodeType::Map);
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (key.rfind("x-", 0) == 0) continue;  // an extension field: anchors to merge from (docs/reference/global.md)
      if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), key) == kTopLevelKeys.end()) {
        std::string near = ClosestMatch(key, kTopLevelKeys);
        if (near == "sources") sections.explained[static_cast<size_t>(ComponentKind::kSource)] = true;
        if (near == "sinks") sections.explained[static_cast<size_t>(ComponentKind::kSink)] = true;
        diag->Error(LocationOf(it->first, file), "unknown top-level key `" + key + "`",
                    near.empty() ? "valid keys: data_dir, api, shutdown_timeout_secs, log, sources, transforms, sinks, tests"
                                 : "did you mean `" + near + "`?");
        continue;
      }
      if (std::find(kGlobalKeys.begin(), kGlobalKeys.end(), key) != kGlobalKeys.end()) {
        std::string dump = Canonical(it->second);
        auto [owner, inserted] = global_owner.try_emplace(key, dump, LocationOf(it->first, file));
        if (!inserted && owner->second.first != dump) {
          diag->Error(LocationOf(it->first, file), "`" + key + "` is also set, differently, at " + owner->second.second.ToString(),
                      "set global options in one file only");
          continue;
        }
        file_globals[key] = it->second;
        continue;
      }
      if (key == "tests") {
        // `tests:` with nothing under it is an empty list, as `tests: []`.
        if (!config.tests.IsDefined() || config.tests.IsNull()) config.tests = YAML::Node(YAML::NodeType::Sequence);
        if (it->second.IsNull()) continue;
        if (!it->second.IsSequence()) {
          diag->Error(LocationOf(it->second, file), "`tests` must be a list of tests");
          continue;
        }
        const YAML::Node list = it->second;  // not a range over it->second: a temporary's member
        for (const auto& t : list) {
          config.tests.push_back(t);
          config.test_files.push_back(file);
        }
        continue;
      }
      ComponentKind kind = key == "sources" ? ComponentKind::kSource
                           : key == "transforms" ? ComponentKind::kTransform
                                                 : ComponentKind::kSink;
      const size_t k = static_cast<size_t>(kind);
      if (it->second.IsNull()) {
        if (!sections.empty[k]) sections.empty[k] = LocationOf(it->first, file);
        continue;
      }
      if (!it->second.IsMap()) {
        diag->Error(LocationOf(it->second, file), "`" + key + "` must be a map of component id to options");
        sections.explained[k] = true;
        continue;
      }
      std::set<std::string> in_this_map;  // a repeat here is a duplicate key, reported already
      for (auto c = it->second.begin(); c != it->second.end(); ++c) {
        std::string id = c->first.Scalar();
        Location where = LocationOf(c->first, file);
        auto [owner, inserted] = id_owner.try_emplace(id, where);
        if (!in_this_map.insert(id).second) continue;
        if (!inserted) {
          diag->Error(where, "duplicate component id `" + id + "`", "first defined at " + owner->second.ToString());
          sections.explained[k] = true;
          continue;
        }
        pending.push_back({id, kind, c->first, c->second, file});
      }
    }
    globals.emplace_back(file, file_globals);
  }

  for (const auto& [file, node] : globals)
    GlobalConfig::schema().Parse(node, &config.global, ParseContext{diag, file, ""});

  // Sources, then transforms, then sinks. (No sorting of `pending`: assigning
  // a YAML::Node writes through to the node it refers to.)
  for (ComponentKind kind : {ComponentKind::kSource, ComponentKind::kTransform, ComponentKind::kSink}) {
    for (const auto& p : pending) {
      if (p.kind != kind) continue;
      ComponentConfig c;
      ParseComponent(p, &c, diag);
      config.components.push_back(std::move(c));  // kept even if broken: graph checks know its id
    }
  }
  // The graph of a config missing a file's components would only list
  // what that file holds as missing.
  if (options.check_graph && !unparsed) CheckGraph(&config, sections, diag);
  if (diag->has_errors()) return std::nullopt;
  return config;
}

std::optional<Config> LoadConfig(const std::vector<std::string>& paths, Diagnostics* diag,
                                 const LoadOptions& options) {
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& file : ExpandConfigPaths(paths, diag)) {
    std::string text;
    if (!ReadConfigFile(file, &text)) {
      diag->Error(Location{file, 0, 0}, std::string("cannot read config file: ") + std::strerror(errno));
      continue;
    }
    texts.emplace_back(file, std::move(text));
  }
  if (texts.empty()) {
    if (!diag->has_errors()) diag->Error(Location{}, "no config files given");
    return std::nullopt;
  }
  return LoadConfigFromStrings(texts, diag, options);
}

namespace {

// The last line (1-based) of any node within `node`.
int LastLine(const YAML::Node& node) {
  int last = node.Mark().line + 1;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) last = std::max({last, LastLine(it->first), LastLine(it->second)});
  } else if (node.IsSequence()) {
    for (const auto& child : node) last = std::max(last, LastLine(child));
  }
  return last;
}

}  // namespace

std::optional<ApiConfig> LoadApiConfig(const std::vector<std::string>& paths, Diagnostics* diag,
                                       const LoadOptions& options) {
  EnvLookup env = options.env ? options.env : ProcessEnv();
  GlobalConfig global;
  const auto files = ExpandConfigPaths(paths, diag);
  if (files.empty() && !diag->has_errors()) diag->Error(Location{}, "no config files given");
  for (const auto& file : files) {
    std::string raw;
    if (!ReadConfigFile(file, &raw)) {
      diag->Error(Location{file, 0, 0}, std::string("cannot read config file: ") + std::strerror(errno));
      continue;
    }
    Diagnostics interpolation;  // only those on the lines of `api` count
    const std::string text = Interpolate(DecodeUtf16(raw), file, env, &interpolation);
    std::optional<YAML::Node> parsed = ParseDocument(text, file, diag, nullptr);
    if (!parsed) continue;
    YAML::Node root = *parsed;
    if (!root.IsMap()) continue;
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it->first.Scalar() != "api") continue;
      const int first = it->first.Mark().line + 1, last = std::max(first, LastLine(it->second));
      for (const auto& d : interpolation.all())
        if (d.severity == Diagnostic::Severity::kError && d.location.line >= first && d.location.line <= last)
          diag->Error(d.location, d.message, d.hint);
      YAML::Node only_api(YAML::NodeType::Map);
      only_api["api"] = it->second;
      GlobalConfig::schema().Parse(only_api, &global, ParseContext{diag, file, ""});
    }
  }
  if (diag->has_errors()) return std::nullopt;
  return global.api;
}

std::string ToDot(const Config& config) {
  std::string out = "digraph {\n";
  auto quote = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  for (const auto& c : config.components) {
    const char* shape = c.kind == ComponentKind::kSource ? "trapezium"
                        : c.kind == ComponentKind::kTransform ? "diamond"
                                                              : "invtrapezium";
    out += "  " + quote(c.id) + " [shape=\"" + shape + "\", label=" + quote(c.id + "\n(" + c.type + ")") + "]\n";
  }
  for (const auto& c : config.components) {
    for (const auto& in : c.inputs) {
      auto dot = in.find('.');
      if (dot == std::string::npos) {
        out += "  " + quote(in) + " -> " + quote(c.id) + "\n";
      } else {
        out += "  " + quote(in.substr(0, dot)) + " -> " + quote(c.id) + " [label=" + quote(in.substr(dot + 1)) + "]\n";
      }
    }
  }
  out += "}\n";
  return out;
}

}  // namespace tributary::config
