#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/registry.h"
#include "tests/support/test_components.h"

namespace tributary::config {
namespace {

std::optional<Config> Load(const std::vector<std::pair<std::string, std::string>>& files, Diagnostics* diag) {
  testing::SourceState("link");  // keeps the test components linked in
  return LoadConfigFromStrings(files, diag, LoadOptions{[](const std::string&) { return std::nullopt; }, true});
}

bool HasError(const Diagnostics& d, const std::string& where, const std::string& text) {
  for (const auto& x : d.all())
    if (x.severity == Diagnostic::Severity::kError && x.location.ToString() == where &&
        (x.message + " " + x.hint).find(text) != std::string::npos)
      return true;
  return false;
}

constexpr const char* kValid = R"(
sources:
  gen: { type: test_source }
transforms:
  re:
    type: test_regex
    inputs: [gen]
    pattern: '^a'
sinks:
  out: { type: test_sink, inputs: [re], buffer: { max_events: 50 } }
)";

// yaml-cpp's Load reads the first document of a file: what came after a
// `---` (files concatenated, kubectl style) was dropped without a word.
TEST(LoaderTest, ASecondYamlDocumentIsAnErrorNotIgnored) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", std::string(kValid) + "---\nsinks:\n  more: { type: test_sink, inputs: [re] }\n"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:12:1", "a second YAML document (after `---`) in one file would be ignored"))
      << diag.ToString();
  Diagnostics ends;  // a `---` before the document, and one with nothing after it, are fine
  EXPECT_TRUE(Load({{"a.yaml", "---" + std::string(kValid) + "---\n"}}, &ends)) << ends.ToString();
}

// A "billion laughs": every walk over the config visited each alias's
// expansion, and a file of a kilobyte kept validate busy for hours.
TEST(LoaderTest, AliasesThatExpandBeyondTheBoundAreAnError) {
  std::string bomb = "x-a0: &a0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int level = 1; level <= 7; ++level) {  // 10^8 nodes
    const std::string prev = "*a" + std::to_string(level - 1);
    bomb += "x-a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", " : "") + prev;
    bomb += "]\n";
  }
  Diagnostics diag;
  EXPECT_FALSE(Load({{"bomb.yaml", bomb + kValid}}, &diag));
  bool said = false;
  for (const auto& d : diag.all()) said |= d.message.find("expands to more than 250000 YAML nodes") != std::string::npos;
  EXPECT_TRUE(said) << diag.ToString();
}

// An alias inside the node its anchor names nests without end: every walk
// over the config recursed until the stack overflowed (a segfault of
// validate, run, and of a running agent given SIGHUP).
TEST(LoaderTest, AnAliasInsideItsOwnAnchorIsAnError) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"self.yaml", "x-loop: &a\n  b: *a\n" + std::string(kValid)}}, &diag));
  EXPECT_TRUE(HasError(diag, "self.yaml:2:3", "nests deeper than 256 levels")) << diag.ToString();
}

// In double quotes YAML reads `\b` as a backspace: the pattern compiled,
// passed validate and never matched.
TEST(LoaderTest, AControlCharacterFromADoubleQuotedEscapeInAPatternIsAnError) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"dq.yaml", R"(sources: { gen: { type: test_source } }
transforms:
  f: { type: filter, inputs: [gen], condition: { field: message, matches: "\bGET\b" } }
  p: { type: regex_parser, inputs: [f], patterns: ["(?P<verb>[A-Z]+)\b"] }
sinks: { out: { type: test_sink, inputs: [p] } }
)"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "dq.yaml:3:75", "control character (\\b in a double-quoted YAML string")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "dq.yaml:4:52", "write regular expressions in single quotes")) << diag.ToString();
}

// `count:` with nothing after it: yaml-cpp places the empty value at the
// next token, column 1 of the next line (another option, or another
// component); the error is given at the key's colon instead.
TEST(LoaderTest, AnEmptyValueIsReportedAtItsKey) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"e.yaml", "sources:\n  demo:\n    type: demo_logs\n    count:\nsinks: { out: { type: test_sink, "
                                 "inputs: [demo] } }\n"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "e.yaml:4:10", "`sources.demo.count` must be a non-negative integer, got nothing"))
      << diag.ToString();
}

// A config saved as UTF-16: yaml-cpp read it, but `${VAR}` was looked for
// in the bytes, where a NUL stands between `$` and `{`, and stayed text.
TEST(LoaderTest, AUtf16FileIsReadWithItsVariables) {
  const std::string text = "data_dir: ${DIR}\n" + std::string(kValid);
  for (bool big_endian : {false, true}) {
    std::string utf16 = big_endian ? "\xFE\xFF" : "\xFF\xFE";
    for (char c : text) {
      if (big_endian) utf16 += '\0';
      utf16 += c;
      if (!big_endian) utf16 += '\0';
    }
    Diagnostics diag;
    auto cfg = LoadConfigFromStrings(
        {{"win.yaml", utf16}}, &diag,
        LoadOptions{[](const std::string& name) -> std::optional<std::string> {
                      if (name == "DIR") return "/srv/tributary";
                      return std::nullopt;
                    },
                    true});
    ASSERT_TRUE(cfg) << diag.ToString();
    EXPECT_EQ(cfg->global.data_dir, "/srv/tributary");
    EXPECT_EQ(cfg->components.size(), 3u);
  }
}

TEST(LoaderTest, LoadsAValidConfig) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", kValid}}, &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  ASSERT_EQ(cfg->components.size(), 3u);
  EXPECT_EQ(cfg->components[0].id, "gen");
  EXPECT_EQ(cfg->components[2].buffer.max_events, 50u);
  EXPECT_EQ(cfg->components[2].inputs, std::vector<std::string>{"re"});
  EXPECT_NE(ToDot(*cfg).find("\"gen\" -> \"re\""), std::string::npos);
}

// buffer.max_bytes is a size with a default (64MiB) and a 1MiB floor; a bad
// value is an error at its place, as for the other size options.
TEST(LoaderTest, BufferMaxBytesIsASizeWithLocatedErrors) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources: { gen: { type: test_source } }
sinks:
  a: { type: test_sink, inputs: [gen] }
  b: { type: test_sink, inputs: [gen], buffer: { max_bytes: 16MiB } }
)"}},
                  &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  EXPECT_EQ(cfg->components[1].buffer.max_bytes.bytes, 64u << 20);
  EXPECT_EQ(cfg->components[2].buffer.max_bytes.bytes, 16u << 20);

  Diagnostics bad;
  EXPECT_FALSE(Load({{"a.yaml", R"(
sources: { gen: { type: test_source } }
sinks:
  a: { type: test_sink, inputs: [gen], buffer: { max_bytes: 100KiB } }
  b: { type: test_sink, inputs: [gen], buffer: { max_bytes: lots } }
  c: { type: test_sink, inputs: [gen], buffer: { max_bytes: -5MiB } }
)"}},
                    &bad));
  EXPECT_TRUE(HasError(bad, "a.yaml:4:61", "`sinks.a.buffer.max_bytes` must be at least 1MiB")) << bad.ToString();
  EXPECT_TRUE(HasError(bad, "a.yaml:5:61", "sinks.b.buffer.max_bytes")) << bad.ToString();
  EXPECT_TRUE(HasError(bad, "a.yaml:6:61", "sinks.c.buffer.max_bytes")) << bad.ToString();
  EXPECT_EQ(bad.error_count(), 3u) << bad.ToString();
}

// `buffer: { type: memory, max_size: 1GiB }` was accepted without a word,
// and the buffer held its default 10000 events: the other type's options
// are warnings now (not errors: they did nothing before either).
TEST(LoaderTest, BufferOptionsOfTheOtherTypeAreWarnings) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources: { gen: { type: test_source } }
sinks:
  a: { type: test_sink, inputs: [gen], buffer: { type: memory, max_size: 1GiB, flush_interval_ms: 10 } }
  b: { type: test_sink, inputs: [gen], buffer: { type: disk, max_events: 5, max_size: 1GiB } }
  c: { type: test_sink, inputs: [gen], buffer: { max_events: 5, max_bytes: 2MiB } }
)"}},
                  &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  std::vector<std::string> warnings;
  for (const auto& d : diag.all())
    if (d.severity == Diagnostic::Severity::kWarning && d.message.find("buffer") != std::string::npos)
      warnings.push_back(d.location.ToString() + " " + d.message);
  EXPECT_EQ(warnings, (std::vector<std::string>{
                          "a.yaml:4:74 `sinks.a.buffer.max_size` does nothing for a memory buffer",
                          "a.yaml:4:99 `sinks.a.buffer.flush_interval_ms` does nothing for a memory buffer",
                          "a.yaml:5:74 `sinks.b.buffer.max_events` does nothing for a disk buffer"}))
      << diag.ToString();
}

TEST(LoaderTest, GraphErrorsNameFileLineAndColumn) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources:
  gen: { type: test_source }
  idle: { type: test_source }
transforms:
  one: { type: test_regex, inputs: [two], pattern: x }
  two: { type: test_regex, inputs: [one], pattern: x }
sinks:
  out: { type: test_sink, inputs: [gne, one] }
  lonely: { type: test_sink }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:9:36", "unknown input `gne`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:9:36", "did you mean `gen`?")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:7:37", "cycle in the topology")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:10:3", "has no inputs")) << diag.ToString();
  bool warned = false;
  for (const auto& d : diag.all())
    warned |= d.severity == Diagnostic::Severity::kWarning && d.message.find("`idle` is not used") != std::string::npos;
  EXPECT_TRUE(warned) << diag.ToString();
}

// An error in a route's own options is reported once: the sinks reading
// its outputs (`ro.a`, `ro._unmatched`) are not also "unknown inputs", and
// the route is not "not used", as they were before.
TEST(LoaderTest, AnErrorInARouteIsNotFollowedByErrorsAboutItsOutputs) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources:
  gen: { type: test_source }
transforms:
  ro:
    type: route
    inputs: [gen]
    route:
      a: { field: status, eqq: 200 }
sinks:
  out: { type: test_sink, inputs: [ro.a, ro._unmatched] }
  other: { type: test_sink, inputs: [gen.a] }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:9:27", "unknown condition key")) << diag.ToString();
  // A component whose config is sound still has no outputs to name.
  EXPECT_TRUE(HasError(diag, "a.yaml:12:38", "unknown input `gen.a`")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 2u) << diag.ToString();
  for (const auto& d : diag.all())
    EXPECT_EQ(d.message.find("not used"), std::string::npos) << diag.ToString();
}

// A route sends every event to a named output (`_unmatched` included)
// and none on its own id: `inputs: [ro]` was accepted and its sink got
// nothing, silently.
TEST(LoaderTest, ARouteItselfIsNotAnInputOnlyItsOutputsAre) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources:
  gen: { type: test_source }
transforms:
  ro:
    type: route
    inputs: [gen]
    route:
      a: { field: status, eq: 200 }
sinks:
  out: { type: test_sink, inputs: [ro] }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:11:36", "input `ro` of `out` names a route itself")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:11:36", "`ro.a`, `ro._unmatched`")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 1u) << diag.ToString();
  for (const auto& d : diag.all()) EXPECT_EQ(d.message.find("not used"), std::string::npos) << diag.ToString();
}

TEST(LoaderTest, DuplicateIdAcrossFilesAndConflictingGlobals) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", std::string("data_dir: /a\n") + kValid},
                   {"b.yaml", "data_dir: /b\nsources:\n  gen: { type: test_source }\n"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "b.yaml:3:3", "duplicate component id `gen`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "b.yaml:3:3", "first defined at a.yaml:4:3")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "b.yaml:1:1", "`data_dir` is also set")) << diag.ToString();
}

// One id written twice in one section is one mistake: a duplicate key
// (YAML keeps one of the two), not also a duplicate component id. The same
// id in two sections of one file is a duplicate id.
TEST(LoaderTest, ARepeatedIdInOneSectionIsOneError) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  out: { type: test_sink, inputs: [gen] }
  out: { type: test_sink, inputs: [gen] }
  gen: { type: test_sink, inputs: [gen] }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:5:3", "duplicate key `out`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:3", "first at a.yaml:4:3")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:6:3", "duplicate component id `gen`")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 2u) << diag.ToString();
}

TEST(LoaderTest, MergesFilesAndAcceptsIdenticalGlobals) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", "data_dir: /x\nsources:\n  gen: { type: test_source }\n"},
                   {"b.yaml", "data_dir: /x\nsinks:\n  out: { type: test_sink, inputs: [gen] }\n"}},
                  &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  EXPECT_EQ(cfg->global.data_dir, "/x");
  EXPECT_EQ(cfg->components.size(), 2u);
}

TEST(LoaderTest, InvalidRegexInALaterTransform) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sources:
  gen: { type: test_source }
transforms:
  first: { type: test_regex, inputs: [gen], pattern: 'ok' }
  second:
    type: test_regex
    inputs: [first]
    pattern: '(?P<name'
sinks:
  out: { type: test_sink, inputs: [second] }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:9:14", "invalid regular expression")) << diag.ToString();
}

TEST(LoaderTest, UnknownTypesKeysAndWrongKinds) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(
sourcs: {}
sources:
  gen: { type: test_sourc }
  other: { type: test_sink }
sinks:
  out: { type: test_sink, inputs: [gen], bufer: {} }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:2:1", "did you mean `sources`?")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:4:16", "did you mean `test_source`?")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:18", "is a sink")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:7:42", "did you mean `buffer`?")) << diag.ToString();
}

TEST(LoaderTest, AnEmptyPathTopicOrIndexIsAnError) {
  // Each would fail every batch at run time (or, for key_field, quietly do
  // something else).
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  f: { type: file, inputs: [gen], path: "" }
  k: { type: kafka, inputs: [gen], bootstrap_servers: "b:9092", topic: "" }
  e: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "" } }
  d: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], mode: data_stream, data_stream: { namespace: "" } }
  ok: { type: file, inputs: [gen, s, all], path: "/tmp/{{ host }}.log" }
transforms:
  s: { type: sample, inputs: [gen], rate: 2, key_field: "" }
  all: { type: sample, inputs: [gen], rate: 2 }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:4:41", "`sinks.f.path`: must not be empty")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:72", "`sinks.k.topic`: must not be empty")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:6:89", "`sinks.e.bulk.index`: must not be empty")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:7:119", "`sinks.d.data_stream.namespace`: must not be empty")) << diag.ToString();
  // An empty key_field sampled by count, as if it were left out.
  EXPECT_TRUE(HasError(diag, "a.yaml:10:57", "`transforms.s.key_field`: must not be empty")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 5u) << diag.ToString();
}

// Elasticsearch refuses every document for such names; a field inserted by
// {{ }} and strftime conversions are not judged.
TEST(LoaderTest, AnIndexNameElasticsearchRefusesIsAnError) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  a: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "Logs-%Y" } }
  b: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs #1" } }
  c: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "_logs" } }
  ok: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs-{{ App }}-%Y.%m.%d" } }
)"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:4:89", "index names are lowercase")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:89", "may not contain")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:6:89", "may not start with")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 3u) << diag.ToString();
}

// `logs-%b-%d` passed (conversions were not judged), then Elasticsearch
// rejected every document for `logs-Nov-24`; `%Q` was written as it is.
// A conversion that writes capitals or a forbidden character is an error
// naming the one to write instead, in data stream names too, and a `%`
// that is not a conversion is an error in every name that takes them.
TEST(LoaderTest, ATimeConversionAnIndexNameCannotHoldIsAnError) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  a: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs-%b-%d" } }
  b: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs-%Y-%Q" } }
  c: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs-%F-%T" } }
  d: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], mode: data_stream, data_stream: { dataset: "app-%Z" } }
  e: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], mode: data_stream, data_stream: { namespace: "App" } }
  f: { type: file, inputs: [gen], path: "/tmp/fq-%Q-%E.log" }
  g: { type: file, inputs: [gen], path: "/tmp/out-100%" }
  ok: { type: elasticsearch, inputs: [gen], endpoints: ["http://e:9200"], bulk: { index: "logs-{{ App }}-%Y.%m.%d-%H%%-%Ey-%z" } }
  okf: { type: file, inputs: [gen], path: "/tmp/{{ host }}-%b-%a-%F %T-100%%.log" }
)"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:4:89",
                       "`sinks.a.bulk.index`: `%b` writes capitals (`Nov`), which Elasticsearch index names may not "
                       "have (it would reject every document); write %m (the month as 01-12) instead"))
      << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:89", "`sinks.b.bulk.index`: `%Q` is not a strftime conversion")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:89", "write `%%` for a literal `%`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:6:89", "`%T` writes `:` (`10:00:00`)")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:7:117", "`sinks.d.data_stream.dataset`: `%Z` writes capitals (`UTC`), which "
                                             "Elasticsearch data stream names may not have"))
      << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:8:119", "Elasticsearch data stream names are lowercase")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:9:41", "`sinks.f.path`: `%Q` is not a strftime conversion")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:10:41", "`sinks.g.path`: ends with a `%`")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 7u) << diag.ToString();
}

TEST(LoaderTest, TopLevelKeysStartingWithXAreExtensionFieldsForAnchors) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(x-sink: &sink { type: test_sink, buffer: { max_events: 50 } }
sources:
  gen: { type: test_source }
sinks:
  one: { <<: *sink, inputs: [gen] }
xsinks: {}
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:6:1", "unknown top-level key `xsinks`")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 1u) << diag.ToString();
  Diagnostics ok;
  cfg = Load({{"a.yaml", R"(x-sink: &sink { type: test_sink, buffer: { max_events: 50 } }
sources:
  gen: { type: test_source }
sinks:
  one: { <<: *sink, inputs: [gen] }
)"}},
             &ok);
  ASSERT_TRUE(cfg) << ok.ToString();
  ASSERT_EQ(cfg->components.size(), 2u);
  EXPECT_EQ(cfg->components[1].buffer.max_events, 50u);
}

TEST(LoaderTest, AScalarWhereATableOfOptionsGoesSaysHowToWriteIt) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  out: { type: console, inputs: [gen], encoding: json }
  other: { type: console, inputs: [gen], encoding: [json] }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:4:50", "write `encoding: { codec: json }`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:5:52", "its options: codec, except_fields")) << diag.ToString();
}

TEST(LoaderTest, AClientCertificateNeedsItsKey) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  e: { type: elasticsearch, inputs: [gen], endpoints: ["https://e:9200"], tls: { crt_file: /c.pem } }
)"}},
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_TRUE(HasError(diag, "a.yaml:4:80", "`crt_file` and `key_file` go together")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:4:80", "add `key_file`")) << diag.ToString();
}

TEST(LoaderTest, MergeKeysCopyTheKeysAMapDoesNotSetItself) {
  // yaml-cpp reads `<<` as a plain key; without expanding it, `second`
  // had no `type` and every merged option was "unknown option `<<`".
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
sinks:
  first: &defaults { type: test_sink, inputs: [gen], buffer: { max_events: 50 } }
  second: { <<: *defaults, buffer: { max_events: 70 } }
  third:
    <<: [{ buffer: { max_events: 90 } }, *defaults]
)"}},
                  &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  ASSERT_EQ(cfg->components.size(), 4u);
  EXPECT_EQ(cfg->components[2].id, "second");
  EXPECT_EQ(cfg->components[2].type, "test_sink");
  EXPECT_EQ(cfg->components[2].inputs, std::vector<std::string>{"gen"});
  EXPECT_EQ(cfg->components[2].buffer.max_events, 70u);  // its own key wins
  EXPECT_EQ(cfg->components[3].type, "test_sink");
  EXPECT_EQ(cfg->components[3].buffer.max_events, 90u);  // the first map listed wins

  Diagnostics bad;
  EXPECT_FALSE(Load({{"b.yaml", "sources:\n  gen: { type: test_source, <<: 3 }\nsinks:\n  o: { type: test_sink, inputs: [gen] }\n"}},
                    &bad));
  EXPECT_TRUE(HasError(bad, "b.yaml:2:29", "a merge key `<<` takes a map")) << bad.ToString();
}

TEST(LoaderTest, AnUnknownOptionMergedFromAnAnchorPointsAtItsLine) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", R"(x-out: &out
  type: test_sink
  bufer: { max_events: 5 }
sources:
  gen: { type: test_source }
sinks:
  o: { <<: *out, inputs: [gen] }
)"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:3:3", "unknown option `sinks.o.bufer`")) << diag.ToString();
}

TEST(LoaderTest, TheAdminAddressIsAnIpAndAPortThatFit) {
  for (const char* good : {"127.0.0.1:0", "0.0.0.0:65535", "localhost:8686", "[::1]:8686"}) {
    Diagnostics diag;
    EXPECT_TRUE(Load({{"a.yaml", std::string("api: { address: \"") + good + "\" }\n" + kValid}}, &diag))
        << good << "\n" << diag.ToString();
  }
  const std::pair<const char*, const char*> bad[] = {
      {"127.0.0.1:99999", "from 0 to 65535"},
      {"127.0.0.1:99999999999999999999999", "from 0 to 65535"},
      {":8686", "write 0.0.0.0:8686"},
      {"nohost.invalid:8686", "must be an IP address"},
      {"::1:8686", "[::1]:8686"},
  };
  for (const auto& [address, why] : bad) {
    Diagnostics diag;
    EXPECT_FALSE(Load({{"a.yaml", std::string("api: { address: \"") + address + "\" }\n" + kValid}}, &diag));
    EXPECT_TRUE(HasError(diag, "a.yaml:1:17", why)) << address << "\n" << diag.ToString();
  }
}

TEST(LoaderTest, GraphMistakesAreOneClearErrorEach) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", R"(sources:
  gen: { type: test_source }
  other: { type: test_source }
transforms:
  a: { type: test_regex, inputs: [c], pattern: x }
  b: { type: test_regex, inputs: [a], pattern: x }
  c: { type: test_regex, inputs: [b], pattern: x }
  self: { type: test_regex, inputs: [self, gen], pattern: x }
sinks:
  twice: { type: test_sink, inputs: [gen, gen] }
  broken: { type: no_such_sink, inputs: [other, c, self] }
  "a/b": { type: test_sink, inputs: [gen] }
)"}},
                    &diag));
  // Events flow a -> b -> c -> a.
  EXPECT_TRUE(HasError(diag, "a.yaml:6:35", "events flow a -> b -> c -> a")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:8:38", "`self` lists itself as an input")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:10:43", "`gen` is listed twice")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:12:3", "invalid component id `a/b`")) << diag.ToString();
  EXPECT_EQ(diag.ToString().find("self -> self"), std::string::npos) << diag.ToString();
  // `other` feeds only the sink whose type is unknown: not "unused".
  EXPECT_EQ(diag.ToString().find("not used"), std::string::npos) << diag.ToString();
}

TEST(LoaderTest, TypeNamesOfOtherShippersAndTheirConfigFormatsGetTheWayToWriteThem) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", R"(sources:
  app: { type: tail }
transforms:
  vrl: { type: remap, inputs: [app] }
sinks:
  out: { type: es, inputs: [vrl] }
)"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:2:16", "tailing files is `file`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:4:16", "no scripting transform")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:6:16", "Elasticsearch sink is `elasticsearch`")) << diag.ToString();

  Diagnostics toml;
  EXPECT_FALSE(Load({{"vector.yaml", "[sources.app]\ntype = \"file\"\ninclude = [\"/var/log/*.log\"]\n"}}, &toml));
  EXPECT_TRUE(HasError(toml, "vector.yaml:1:1", "TOML")) << toml.ToString();
  EXPECT_EQ(toml.error_count(), 1u) << toml.ToString();  // not also "no sources" and "no sinks"
}

TEST(LoaderTest, AFileNamedTwiceIsReadOnce) {
  // Before, each of its ids was "a duplicate of itself".
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "named_twice";
  std::filesystem::create_directories(dir / "conf.d");
  std::ofstream(dir / "conf.d" / "a.yaml") << kValid;
  Diagnostics diag;
  const std::vector<std::string> files = ExpandConfigPaths(
      {(dir / "conf.d").string(), (dir / "conf.d" / "a.yaml").string(), (dir / "conf.d" / ".." / "conf.d" / "a.yaml").string()},
      &diag);
  EXPECT_EQ(files, std::vector<std::string>{(dir / "conf.d" / "a.yaml").string()});
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
  std::filesystem::remove_all(dir);
}

// yaml-cpp folds the lines after a quote that is never closed into its
// value: before, the only errors were "no sources defined" and "no sinks
// defined", with no line.
TEST(LoaderTest, AQuoteNeverClosedIsReportedWhereItOpens) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", "data_dir: \"/var/lib/x\nsources:\n  gen: { type: test_source }\n"
                                "sinks:\n  out: { type: test_sink, inputs: [gen] }\n"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:1:11", "not closed on its line")) << diag.ToString();
  EXPECT_EQ(diag.error_count(), 1u) << diag.ToString();
  Diagnostics fine;  // a quoted value may span lines
  EXPECT_TRUE(Load({{"a.yaml", "data_dir: \"/var/lib/\n  x\"\n" + std::string(kValid)}}, &fine)) << fine.ToString();
  Diagnostics empty;
  EXPECT_FALSE(Load({{"a.yaml", "data_dir: \"\"\n" + std::string(kValid)}}, &empty));
  EXPECT_TRUE(HasError(empty, "a.yaml:1:11", "must not be empty")) << empty.ToString();
}

TEST(LoaderTest, YamlSyntaxErrorHasLocation) {
  Diagnostics diag;
  auto cfg = Load({{"a.yaml", "sources:\n  gen: { type: test_source\n"}}, &diag);
  EXPECT_FALSE(cfg);
  ASSERT_FALSE(diag.all().empty());
  EXPECT_EQ(diag.all()[0].location.file, "a.yaml");
  EXPECT_GT(diag.all()[0].location.line, 0);
}

TEST(LoaderTest, YamlSyntaxErrorsSayHowToFixThem) {
  struct Case {
    const char* text;
    const char* where;
    const char* hint;
  };
  const std::string deep = "x: " + std::string(2100, '[') + std::string(2100, ']') + "\n";
  const Case cases[] = {
      {"sources:\n  gen: { type: test_source\nsinks: {}\n", "a.yaml:3:6", "close the `{` opened at 2:8 with `}`"},
      {"sources:\n  gen: { type: test_source, tags: [a, \"b]\"\n", "a.yaml:3:1", "close the `[` opened at 2:35"},
      {"sources:\n  gen: { type: test_source, tags: [a }\n", "a.yaml:2:38", "close the `[` opened at 2:35 with `]` first"},
      {"sources:\n\tgen: { type: test_source }\n", "a.yaml:2:5", "line 2 is indented with a tab"},
      {"sources:\n  gen:\n    type: test_source\n   rate: 5\n", "a.yaml:4:4", "check this line's indentation"},
      {"transforms:\n  p: { type: regex_parser, patterns: [\"^\\d+$\"] }\n", "a.yaml:2:43",
       "write regular expressions in single quotes"},
      {"transforms:\n  a:\n    type: add_fields\n    fields:\n      msg: error: bad\n", "a.yaml:5:17",
       "quote a value that contains `: `"},
      // Each of these was a bare "illegal map value", "unknown token", or
      // "bad file" (yaml-cpp's depth limit).
      {"sinks:\n  out:\n    type:console\n    inputs: [gen]\n", "a.yaml:4:11",
       "line 3: `type:console` needs a space after the colon (`type: console`)"},
      {"sinks:\n  out: { type: test_sink, target: @stdout }\n", "a.yaml:2:35",
       "`@` is reserved in YAML and cannot start a plain value: quote it ('@stdout')"},
      {"sinks:\n  out:\n    <<: *es\n", "a.yaml:3:9", "no `&es` comes before it in this file"},
      {deep.c_str(), nullptr, "maps and lists nest too deeply here to be read"},
  };
  for (const Case& c : cases) {
    Diagnostics diag;
    EXPECT_FALSE(Load({{"a.yaml", c.text}}, &diag));
    if (c.where == nullptr) {  // where yaml-cpp stops: not ours to say
      ASSERT_FALSE(diag.all().empty());
      EXPECT_NE((diag.all()[0].message + diag.all()[0].hint).find(c.hint), std::string::npos) << diag.ToString();
    } else {
      EXPECT_TRUE(HasError(diag, c.where, c.hint)) << c.text << "\n" << diag.ToString();
    }
    // Nothing about the graph of a config whose file could not be read.
    EXPECT_EQ(diag.error_count(), 1u) << c.text << "\n" << diag.ToString();
  }
}

// Characters the user cannot see gave yaml-cpp errors about something
// else: "unknown escape character" for a NUL, "unknown top-level key ``"
// for a lone CR, a key of four "spaces" for no-break spaces.
TEST(LoaderTest, InvisibleCharactersAreNamedWhereTheyAre) {
  struct Case {
    std::string text;
    const char* where;
    const char* message;
  };
  const std::string valid = kValid;
  const Case cases[] = {
      {std::string("sources:\n  gen: { type: test_so") + '\0' + "urce }\n", "a.yaml:2:23", "a NUL byte"},
      {valid + "\r", "a.yaml:11:1", "a carriage return (CR) that ends no line"},
      {"sources:\r  gen: { type: test_source }\r", "a.yaml:1:1", "end with a carriage return (CR) only"},
      {"sources:\n\xC2\xA0\xC2\xA0gen: { type: test_source }\n", "a.yaml:2:1", "a no-break space (U+00A0) in its indentation"},
      {"sources:\n  gen: { type:\xC2\xA0test_source }\n", "a.yaml:2:15", "a no-break space (U+00A0) after `:`"},
      {"sources:\n  gen\xEF\xBC\x9A { type: test_source }\n", "a.yaml:2:6", "a full-width colon (U+FF1A)"},
  };
  for (const Case& c : cases) {
    Diagnostics diag;
    EXPECT_FALSE(Load({{"a.yaml", c.text}}, &diag));
    EXPECT_TRUE(HasError(diag, c.where, c.message)) << diag.ToString();
    EXPECT_EQ(diag.error_count(), 1u) << diag.ToString();
  }
  // A zero-width space warns where it is; CR LF line ends and a no-break
  // space inside a value are fine.
  Diagnostics zw;
  Load({{"a.yaml", "sources:\n  gen: { type: test_source }\nsinks:\n  out: { type: test_sink, inp\xE2\x80\x8Buts: [gen] }\n"}}, &zw);
  bool warned = false;
  for (const auto& d : zw.all())
    warned |= d.severity == Diagnostic::Severity::kWarning && d.location.ToString() == "a.yaml:4:30" &&
              d.message.find("a zero-width space (U+200B)") != std::string::npos;
  EXPECT_TRUE(warned) << zw.ToString();
  Diagnostics fine;
  std::string crlf;
  for (char ch : valid) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  EXPECT_TRUE(Load({{"a.yaml", crlf}}, &fine)) << fine.ToString();
  EXPECT_TRUE(Load({{"a.yaml", "x-note: a\xC2\xA0" "b\n" + valid}}, &fine)) << fine.ToString();
}

// "no sources defined" came without a line, and also when the cause was
// reported already: a misspelt `source:`, or a source refused for its id.
TEST(LoaderTest, NoSourcesOrSinksIsSaidOnlyWhenNothingElseExplainsIt) {
  Diagnostics typo;
  EXPECT_FALSE(Load({{"a.yaml", "source:\n  gen: { type: test_source }\nsinks:\n  out: { type: test_sink, inputs: [gen] }\n"}},
                    &typo));
  EXPECT_TRUE(HasError(typo, "a.yaml:1:1", "did you mean `sources`?")) << typo.ToString();
  EXPECT_EQ(typo.ToString().find("no sources defined"), std::string::npos) << typo.ToString();
  Diagnostics duplicate;
  EXPECT_FALSE(Load({{"a.yaml", "sources:\n  x: { type: test_source }\nsinks:\n  x: { type: test_sink, inputs: [x] }\n"}},
                    &duplicate));
  EXPECT_TRUE(HasError(duplicate, "a.yaml:4:3", "duplicate component id `x`")) << duplicate.ToString();
  EXPECT_EQ(duplicate.ToString().find("no sinks defined"), std::string::npos) << duplicate.ToString();
  // `sinks:` with its component not indented under it: at the key.
  Diagnostics unindented;
  EXPECT_FALSE(Load({{"a.yaml", "sources:\n  gen: { type: test_source }\nsinks:\nout: { type: test_sink, inputs: [gen] }\n"}},
                    &unindented));
  EXPECT_TRUE(HasError(unindented, "a.yaml:3:1", "`sinks` has no components")) << unindented.ToString();
  // Nothing at all: at the start of the last file.
  Diagnostics none;
  EXPECT_FALSE(Load({{"a.yaml", "sources:\n  gen: { type: test_source }\n"}, {"b.yaml", "data_dir: /tmp\n"}}, &none));
  EXPECT_TRUE(HasError(none, "b.yaml:1:1", "no sinks defined")) << none.ToString();
}

// A global written in flow style in one file and in block style in
// another was "set differently".
TEST(LoaderTest, AGlobalSetAlikeInTwoStylesIsTheSame) {
  Diagnostics diag;
  EXPECT_TRUE(Load({{"a.yaml", "api:\n  address: \"127.0.0.1:0\"\n" + std::string(kValid)},
                    {"b.yaml", "api: {address: 127.0.0.1:0}  # the same\n"}},
                   &diag))
      << diag.ToString();
  Diagnostics differ;
  EXPECT_FALSE(Load({{"a.yaml", "api:\n  address: 127.0.0.1:0\n" + std::string(kValid)},
                     {"b.yaml", "api: {address: 127.0.0.1:1}\n"}},
                    &differ));
  EXPECT_TRUE(HasError(differ, "b.yaml:1:1", "`api` is also set, differently, at a.yaml:1:1")) << differ.ToString();
}

// NUL, newline and other control characters passed: directories under
// data_dir got them in their names, and a NUL cut the path.
TEST(LoaderTest, AComponentIdWithAControlCharacterOrTooLongIsRefused) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"a.yaml", "sources:\n  \"a\\nb\": { type: test_source }\n  \"" + std::string(201, 'x') +
                                    "\": { type: test_source }\nsinks:\n  out: { type: test_sink, inputs: [\"a\\nb\", " +
                                    std::string(201, 'x') + "] }\n"}},
                    &diag));
  EXPECT_TRUE(HasError(diag, "a.yaml:2:3", "invalid component id `a\\x0ab`")) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "a.yaml:3:3", "is 201 bytes long")) << diag.ToString();
  EXPECT_EQ(diag.ToString().find("a\nb"), std::string::npos) << diag.ToString();  // not written raw
}

// A conf.d with an editor's hidden files, a directory that cannot be
// listed, and a file whose read fails (it read as empty: "no sources").
TEST(LoaderTest, ConfigDirectoriesSkipHiddenFilesAndReadErrorsAreSaid) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "hidden_files";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "conf.d");
  std::ofstream(dir / "conf.d" / "a.yaml") << kValid;
  std::ofstream(dir / "conf.d" / ".a.yaml.swp.yaml") << "{{{ not yaml";
  Diagnostics diag;
  EXPECT_EQ(ExpandConfigPaths({(dir / "conf.d").string()}, &diag), std::vector<std::string>{(dir / "conf.d" / "a.yaml").string()});
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
  Diagnostics missing;
  EXPECT_FALSE(LoadConfig({(dir / "nothere.yaml").string()}, &missing));
  EXPECT_TRUE(HasError(missing, (dir / "nothere.yaml").string(), "cannot read config file: No such file or directory"))
      << missing.ToString();
  Diagnostics unreadable;  // opens, and its first read fails (EIO)
  EXPECT_FALSE(LoadConfig({"/proc/self/mem"}, &unreadable));
  EXPECT_TRUE(HasError(unreadable, "/proc/self/mem", "cannot read config file: ")) << unreadable.ToString();
  EXPECT_EQ(unreadable.ToString().find("no sources"), std::string::npos) << unreadable.ToString();
  std::filesystem::remove_all(dir);
}

// `-c /etc/shadow` printed one "unknown top-level key" per line, each with
// the line (a password hash) in it, into the CI log.
TEST(LoaderTest, AFileThatIsNoConfigAtAllIsOneError) {
  Diagnostics diag;
  EXPECT_FALSE(Load({{"shadow", "root:*:20228:0:99999:7:::\nbin:*:1:0:9:7:::\nsys:*:1:0:9:7:::\nsync:$6$salt$hash:1:0:9:7:::\n"}},
                    &diag));
  ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
  EXPECT_TRUE(HasError(diag, "shadow:1:1", "this is not a tributary configuration: none of its 4 top-level keys"))
      << diag.ToString();
  EXPECT_EQ(diag.ToString().find("$6$salt"), std::string::npos) << diag.ToString();
  Diagnostics typos;  // keys close to ours are still reported one by one
  EXPECT_FALSE(Load({{"a.yaml", "source: {}\nsink: {}\ntransform: {}\ntest: []\n"}}, &typos));
  EXPECT_TRUE(HasError(typos, "a.yaml:1:1", "did you mean `sources`?")) << typos.ToString();
}

// A relative path passed without a word; `validate` checked it from its own
// working directory, while the service starts in /.
TEST(LoaderTest, RelativePathsAreWarnedAbout) {
  Diagnostics diag;
  EXPECT_TRUE(Load({{"a.yaml", "data_dir: relative/dir\n"
                               "sources: { in: { type: file, include: [x/*.log, /var/log/*.log] } }\n"
                               "sinks: { o: { type: file, inputs: [in], path: out.log } }\n"}},
                   &diag))
      << diag.ToString();
  std::vector<std::string> warned;
  for (const auto& d : diag.all())
    if (d.severity == Diagnostic::Severity::kWarning && d.message.find("is a relative path") != std::string::npos)
      warned.push_back(d.location.ToString() + " " + d.message.substr(0, d.message.find(" is a")));
  EXPECT_EQ(warned, (std::vector<std::string>{"a.yaml:1:11 `data_dir`", "a.yaml:2:40 `sources.in.include[0]`",
                                              "a.yaml:3:47 `sinks.o.path`"}))
      << diag.ToString();
}

}  // namespace
}  // namespace tributary::config
