//! `@tessera/browser` in Debian's Chromium: a React app, an Angular app and an oidc-client-ts
//! app, each built in the test and signed in through the login page, follow a role change made
//! on the command line under both policies (js/browser/test/). Without Chromium those files
//! skip (TESSERA_REQUIRE_BROWSER=1 makes them fail instead). The Session's feed logic also
//! runs in Node, without a browser (session.test.mjs).

#[test]
fn react_app_follows_role_changes() {
    super::node_test("browser/test/react.test.mjs");
}

#[test]
fn angular_app_follows_role_changes() {
    super::node_test("browser/test/angular.test.mjs");
}

#[test]
fn oidc_client_ts_signs_in_and_the_package_follows_roles() {
    super::node_test("browser/test/oidc-client-ts.test.mjs");
}

#[test]
fn session_feed_survives_expiry_and_unreachable_refresh_and_stops_on_sign_out() {
    super::node_test("browser/test/session.test.mjs");
}
