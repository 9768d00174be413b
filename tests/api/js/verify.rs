//! `@tessera/verify` (js/verify): its Node test files against this build's `tessera`.

#[test]
fn js_verify_freshness_each_change_refused_within_a_second() {
    super::node_test("verify/test/feed.test.mjs");
}

#[test]
fn js_verify_staleness_policies_and_discovery() {
    super::node_test("verify/test/stale.test.mjs");
}

#[test]
fn js_verify_hostile_tokens_and_the_jwks_cache() {
    super::node_test("verify/test/hostile.test.mjs");
}

#[test]
fn js_verify_agrees_with_a_bare_jose_verify() {
    super::node_test("verify/test/interop.test.mjs");
}

#[test]
fn js_verify_express_fastify_and_nest_adapters() {
    super::node_test("verify/test/adapters.test.mjs");
}

#[test]
fn js_verify_units_without_an_issuer() {
    super::node_test("verify/test/units.test.mjs");
}

#[test]
fn js_verify_the_express_example_keeps_its_contract() {
    super::node_test("verify/test/example.test.mjs");
}
