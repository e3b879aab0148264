#include "storage/keys.h"

#include <gtest/gtest.h>

namespace m3vdb::storage {
namespace {

TEST(KeysTest, DocKeysSortByCollectionThenInternalId) {
  EXPECT_LT(DocKey(1, 255), DocKey(1, 256));
  EXPECT_LT(DocKey(1, ~uint64_t{0}), DocKey(2, 0));
  EXPECT_LT(DocKey(7, 3), CollectionPrefixEnd(7));
  EXPECT_GE(DocKey(7, 0), CollectionPrefix(7));
  EXPECT_EQ(DocKey(7, 3).substr(0, 8), CollectionPrefix(7));
  uint64_t c, i;
  ASSERT_TRUE(ParseDocKey(DocKey(0x0102030405060708ull, 42), &c, &i));
  EXPECT_EQ(c, 0x0102030405060708ull);
  EXPECT_EQ(i, 42u);
  EXPECT_FALSE(ParseDocKey("short", &c, &i));
}

TEST(KeysTest, IdKeysStayInsideTheCollectionRange) {
  const std::string u = UserIdKey(5, "doc-1"), in = InternalIdKey(5, 9);
  EXPECT_EQ(u.substr(0, 8), CollectionPrefix(5));
  EXPECT_EQ(in.substr(0, InternalIdPrefix(5).size()), InternalIdPrefix(5));
  EXPECT_LT(u, CollectionPrefixEnd(5));
  EXPECT_LT(in, CollectionPrefixEnd(5));
  EXPECT_NE(UserIdKey(5, "a"), UserIdKey(6, "a"));
}

}  // namespace
}  // namespace m3vdb::storage
