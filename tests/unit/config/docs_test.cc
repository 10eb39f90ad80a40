// The reference docs are part of every component: docs/reference/<kind>s/
// <type>.md must exist for each registered type and mention each option
// of its table (nested options as `parent.child`).

#include <gtest/gtest.h>

#include <filesystem>

#include "config/config.h"
#include "config/registry.h"
#include "tests/support/test_util.h"

namespace tributary::config {
namespace {

void CollectNames(const SchemaBase& schema, const std::string& prefix, std::vector<std::string>* out) {
  for (const auto& d : schema.Docs()) {
    out->push_back(prefix + d.name);
    if (d.nested) CollectNames(*d.nested, prefix + d.name + ".", out);
  }
}

TEST(DocsTest, EveryComponentOptionIsDocumented) {
  for (const ComponentType* type : Registry::Get().All()) {
    if (type->name.rfind("test_", 0) == 0) continue;  // registered by unit tests
    std::string path = testing::SourceDir() + "/docs/reference/" + ComponentKindName(type->kind) + "s/" +
                       type->name + ".md";
    ASSERT_TRUE(std::filesystem::exists(path)) << "missing reference page " << path;
    std::string text = testing::ReadFile(path);
    std::vector<std::string> names;
    CollectNames(*type->schema, "", &names);
    for (const auto& name : names) {
      EXPECT_NE(text.find("`" + name + "`"), std::string::npos)
          << path << " does not document option `" << name << "`";
    }
  }
}

TEST(DocsTest, GlobalOptionsAreDocumented) {
  std::string text = testing::ReadFile(testing::SourceDir() + "/docs/reference/global.md");
  std::vector<std::string> names;
  CollectNames(GlobalConfig::schema(), "", &names);
  CollectNames(BufferConfig::schema(), "buffer.", &names);
  for (const auto& name : names)
    EXPECT_NE(text.find("`" + name + "`"), std::string::npos) << "docs/reference/global.md lacks `" << name << "`";
}

}  // namespace
}  // namespace tributary::config
