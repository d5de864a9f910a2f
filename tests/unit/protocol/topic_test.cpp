// Topic names, filters, shared filters and matching: MQTT 5.0 sections 4.7 and 4.8.2.
#include "protocol/topic.hpp"

#include <string>

#include <catch2/catch.hpp>

using broker::protocol::is_shared_filter;
using broker::protocol::parse_shared_filter;
using broker::protocol::topic_levels;
using broker::protocol::topic_matches;
using broker::protocol::valid_topic_filter;
using broker::protocol::valid_topic_name;

namespace {
const std::string kNul("a\0b", 3);
}

TEST_CASE("topic: names and filters must be at least one character [MQTT-4.7.3-1]") {
  CHECK_FALSE(valid_topic_name(""));
  CHECK_FALSE(valid_topic_filter(""));
  CHECK(valid_topic_name("a"));
  CHECK(valid_topic_filter("a"));
}

TEST_CASE("topic: names and filters must not contain U+0000 [MQTT-4.7.3-2]") {
  CHECK_FALSE(valid_topic_name(kNul));
  CHECK_FALSE(valid_topic_filter(kNul));
  CHECK_FALSE(valid_topic_filter("$share/g/" + kNul));
  CHECK_FALSE(valid_topic_filter(std::string("$share/g\0/x", 11)));
}

TEST_CASE("topic: names and filters are at most 65,535 bytes [MQTT-4.7.3-3]") {
  const std::string longest(65535, 'a');
  const std::string too_long(65536, 'a');
  CHECK(valid_topic_name(longest));
  CHECK(valid_topic_filter(longest));
  CHECK_FALSE(valid_topic_name(too_long));
  CHECK_FALSE(valid_topic_filter(too_long));
  CHECK_FALSE(valid_topic_filter("$share/g/" + std::string(65530, 'a')));
}

TEST_CASE("topic: a PUBLISH topic name has no wildcards [MQTT-3.3.2-2]") {
  CHECK_FALSE(valid_topic_name("+"));
  CHECK_FALSE(valid_topic_name("#"));
  CHECK_FALSE(valid_topic_name("sport/+"));
  CHECK_FALSE(valid_topic_name("sport/tennis/#"));
  CHECK_FALSE(valid_topic_name("a+b"));
  CHECK_FALSE(valid_topic_name("a#"));
}

TEST_CASE("topic: names may hold spaces, '$', empty levels and other bytes (4.7.3)") {
  CHECK(valid_topic_name("/"));
  CHECK(valid_topic_name("//"));
  CHECK(valid_topic_name(" "));
  CHECK(valid_topic_name("sport/tennis player"));
  CHECK(valid_topic_name("$SYS/broker/uptime"));
  CHECK(valid_topic_name("/finance/"));
  CHECK(valid_topic_name("caf\xC3\xA9"));
}

TEST_CASE("topic: '#' is a whole level and the last character [MQTT-4.7.1-1]") {
  CHECK(valid_topic_filter("#"));
  CHECK(valid_topic_filter("sport/#"));
  CHECK(valid_topic_filter("sport/tennis/player1/#"));
  CHECK(valid_topic_filter("/#"));
  CHECK(valid_topic_filter("+/#"));
  CHECK_FALSE(valid_topic_filter("sport/tennis#"));
  CHECK_FALSE(valid_topic_filter("sport/tennis/#/ranking"));
  CHECK_FALSE(valid_topic_filter("#/"));
  CHECK_FALSE(valid_topic_filter("##"));
  CHECK_FALSE(valid_topic_filter("a/#b"));
  CHECK_FALSE(valid_topic_filter("#a"));
}

TEST_CASE("topic: '+' occupies a whole level [MQTT-4.7.1-2]") {
  CHECK(valid_topic_filter("+"));
  CHECK(valid_topic_filter("+/tennis/#"));
  CHECK(valid_topic_filter("sport/+/player1"));
  CHECK(valid_topic_filter("/+"));
  CHECK(valid_topic_filter("+/+"));
  CHECK(valid_topic_filter("+//+"));
  CHECK_FALSE(valid_topic_filter("sport+"));
  CHECK_FALSE(valid_topic_filter("+a"));
  CHECK_FALSE(valid_topic_filter("a/+b/c"));
  CHECK_FALSE(valid_topic_filter("++"));
  CHECK_FALSE(valid_topic_filter("a/b+"));
}

TEST_CASE("topic: a filter of only separators is valid (4.7.3)") {
  CHECK(valid_topic_filter("/"));
  CHECK(valid_topic_filter("//"));
}

TEST_CASE("topic: is_shared_filter recognises exactly the \"$share/\" prefix") {
  CHECK(is_shared_filter("$share/g/x"));
  CHECK(is_shared_filter("$share/"));
  CHECK_FALSE(is_shared_filter("$share"));
  CHECK_FALSE(is_shared_filter("$SHARE/g/x"));
  CHECK_FALSE(is_shared_filter("$sharex/g/x"));
  CHECK_FALSE(is_shared_filter("a/$share/g/x"));
}

TEST_CASE("topic: shared filter parts (4.8.2)") {
  auto p = parse_shared_filter("$share/consumer1/sport/tennis/+");
  REQUIRE(p);
  CHECK(p->group == "consumer1");
  CHECK(p->filter == "sport/tennis/+");

  p = parse_shared_filter("$share/consumer1//finance");
  REQUIRE(p);
  CHECK(p->group == "consumer1");
  CHECK(p->filter == "/finance");

  p = parse_shared_filter("$share/g/#");
  REQUIRE(p);
  CHECK(p->filter == "#");

  CHECK_FALSE(parse_shared_filter("sport/tennis"));  // not shared
  CHECK_FALSE(parse_shared_filter("$share"));
  CHECK(valid_topic_filter("$share"));  // an ordinary filter
}

TEST_CASE("topic: a ShareName is at least one character [MQTT-4.8.2-1]") {
  CHECK_FALSE(parse_shared_filter("$share//sport"));
  CHECK_FALSE(valid_topic_filter("$share//sport"));
  CHECK_FALSE(valid_topic_filter("$share/"));
}

TEST_CASE("topic: a ShareName has no '/', '+', '#' and is followed by '/' and a filter [MQTT-4.8.2-2]") {
  CHECK_FALSE(valid_topic_filter("$share/g"));
  CHECK_FALSE(valid_topic_filter("$share/g/"));      // empty filter
  CHECK_FALSE(valid_topic_filter("$share/a+b/x"));
  CHECK_FALSE(valid_topic_filter("$share/+/x"));
  CHECK_FALSE(valid_topic_filter("$share/#/x"));
  CHECK_FALSE(valid_topic_filter("$share/g/a#"));    // the filter part follows 4.7.1
  CHECK_FALSE(valid_topic_filter("$share/g/a/+b"));
  CHECK(valid_topic_filter("$share/g/+"));
  CHECK(valid_topic_filter("$share/g//"));
}

TEST_CASE("topic: '#' matches the parent and any number of levels (4.7.1.2)") {
  CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
  CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  CHECK(topic_matches("sport/#", "sport"));
  CHECK(topic_matches("sport/#", "sport/"));
  CHECK(topic_matches("#", "sport"));
  CHECK(topic_matches("#", "/"));
  CHECK(topic_matches("#", "a/b/c"));
  CHECK(topic_matches("/#", "/"));
  CHECK(topic_matches("+/#", "a"));
  CHECK_FALSE(topic_matches("sport/#", "sports"));
  CHECK_FALSE(topic_matches("sport/tennis/#", "sport"));
  CHECK_FALSE(topic_matches("/#", "a"));
}

TEST_CASE("topic: '+' matches exactly one level, empty ones too (4.7.1.3)") {
  CHECK(topic_matches("sport/tennis/+", "sport/tennis/player1"));
  CHECK(topic_matches("sport/tennis/+", "sport/tennis/player2"));
  CHECK_FALSE(topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
  CHECK_FALSE(topic_matches("sport/+", "sport"));
  CHECK(topic_matches("sport/+", "sport/"));
  CHECK(topic_matches("+/+", "/finance"));
  CHECK(topic_matches("/+", "/finance"));
  CHECK_FALSE(topic_matches("+", "/finance"));
  CHECK(topic_matches("+", "a"));
  CHECK(topic_matches("sport/+/player1", "sport/tennis/player1"));
  CHECK(topic_matches("+/+/+", "//"));
  CHECK_FALSE(topic_matches("+/+", "a"));
  CHECK(topic_matches("+/tennis/#", "sport/tennis/player1/ranking"));
}

TEST_CASE("topic: wildcards at the first level don't match '$' names [MQTT-4.7.2-1]") {
  CHECK_FALSE(topic_matches("#", "$SYS/monitor/Clients"));
  CHECK_FALSE(topic_matches("#", "$SYS"));
  CHECK_FALSE(topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
  CHECK_FALSE(topic_matches("+", "$"));
  CHECK_FALSE(topic_matches("+/#", "$SYS/a"));
  CHECK(topic_matches("$SYS/#", "$SYS/monitor/Clients"));
  CHECK(topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
  CHECK(topic_matches("$SYS/#", "$SYS"));
  // Only the first level is special.
  CHECK(topic_matches("a/+", "a/$b"));
  CHECK(topic_matches("a/#", "a/$b/c"));
}

TEST_CASE("topic: matching is exact: case-sensitive, no normalisation [MQTT-4.7.3-4]") {
  CHECK(topic_matches("ACCOUNTS", "ACCOUNTS"));
  CHECK_FALSE(topic_matches("ACCOUNTS", "Accounts"));
  CHECK_FALSE(topic_matches("a/b", "a//b"));
  CHECK_FALSE(topic_matches("a/b", "a/b/"));
  CHECK_FALSE(topic_matches("a/b", "/a/b"));
  CHECK_FALSE(topic_matches("a b", "a  b"));
  CHECK(topic_matches("a b/c", "a b/c"));
  CHECK_FALSE(topic_matches("caf\xC3\xA9", "cafe\xCC\x81"));  // no Unicode normalisation
  CHECK(topic_matches("/", "/"));
  CHECK_FALSE(topic_matches("/", "//"));
}

TEST_CASE("topic: levels are counted per '/', a shared filter's own part only") {
  CHECK(topic_levels("a") == 1);
  CHECK(topic_levels("/") == 2);
  CHECK(topic_levels("fleet/eu/VIN123/cmd") == 4);
  CHECK(topic_levels("fleet/+/#") == 3);
  CHECK(topic_levels("$share/group/fleet/+/cmd") == 3);
}
