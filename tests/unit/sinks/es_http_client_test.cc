// The elasticsearch sink's HTTP client against an in-process HTTPS server
// with a self-signed certificate made by the `openssl` command: trust via
// tls.ca_file, refusal without it, hostname checks, verify_certificate:
// false, keep-alive reuse, headers.

#include "sinks/es_http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "tests/support/es_server_process.h"
#include "tests/support/test_util.h"

namespace tributary::es {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Seen {
  std::string target, authorization, content_encoding, content_type, body;
};

// A TLS HTTP/1.1 server answering every request with 200 {"errors":false},
// keep-alive; one connection at a time, on its own thread.
class TlsServer {
 public:
  // `client_ca`: if set, clients must present a certificate it signed.
  TlsServer(const std::string& cert, const std::string& key, const std::string& client_ca = "")
      : ctx_(ssl::context::tls_server) {
    ctx_.use_certificate_chain_file(cert);
    ctx_.use_private_key_file(key, ssl::context::pem);
    if (!client_ca.empty()) {
      ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      ctx_.load_verify_file(client_ca);
    }
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket wake(io_);
    wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int accepts() const { return accepts_; }
  std::vector<Seen> seen() {
    std::lock_guard l(mu_);
    return seen_;
  }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket s(io_);
      beast::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) break;
      ++accepts_;
      beast::ssl_stream<tcp::socket> stream(std::move(s), ctx_);
      stream.handshake(ssl::stream_base::server, ec);
      if (ec) continue;  // the client refused our certificate
      beast::flat_buffer buf;
      while (true) {
        http::request<http::string_body> req;
        http::read(stream, buf, req, ec);
        if (ec) break;
        {
          std::lock_guard l(mu_);
          seen_.push_back({std::string(req.target()), std::string(req[http::field::authorization]),
                           std::string(req[http::field::content_encoding]),
                           std::string(req[http::field::content_type]), req.body()});
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"errors":false})";
        res.keep_alive(true);
        res.prepare_payload();
        http::write(stream, res, ec);
        if (ec) break;
      }
    }
  }

  asio::io_context io_;
  ssl::context ctx_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::mutex mu_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

class EsHttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_ / "cert.pem";
    key_ = dir_ / "key.pem";
    ASSERT_TRUE(MakeCertificate("/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1", cert_, key_));
    server_ = std::make_unique<TlsServer>(cert_, key_);
  }

  // A self-signed certificate; `subject` is -subj and any further openssl req options.
  static bool MakeCertificate(const std::string& subject, const std::string& cert, const std::string& key) {
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj " + subject + " -keyout " + key +
                      " -out " + cert + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }

  std::unique_ptr<HttpClient> Client(const std::string& host, TlsConfig tls, std::string auth = "") {
    HttpClientOptions o;
    auto e = ParseEndpoint("https://" + host + ":" + std::to_string(server_->port()) + "/prefix");
    EXPECT_TRUE(e.ok());
    o.endpoints.push_back(*e);
    o.tls = std::move(tls);
    o.timeout = std::chrono::seconds(5);
    o.authorization = std::move(auth);
    auto c = HttpClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    (*c)->Start();
    return std::move(c).value();
  }

  static HttpResponse Post(HttpClient& c, const std::string& body, bool gzip = false) {
    std::promise<HttpResponse> p;
    c.Post("/_bulk", std::make_shared<const std::string>(body), gzip, [&](HttpResponse r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }

  testing::TempDir dir_;
  std::string cert_, key_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(EsHttpClientTest, TrustsTheCaFileAndKeepsTheConnection) {
  TlsConfig tls;
  tls.ca_file = cert_;
  auto client = Client("127.0.0.1", tls, BasicAuthorization("u", "p"));
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = Post(*client, "{\"index\":{}}\n{\"n\":" + std::to_string(i) + "}\n", i == 2);
    ASSERT_TRUE(r.error.ok()) << r.error.ToString();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"errors":false})");
  }
  client.reset();
  EXPECT_EQ(server_->accepts(), 1);  // one connection for all three
  auto seen = server_->seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].target, "/prefix/_bulk");
  EXPECT_EQ(seen[0].authorization, "Basic dTpw");
  EXPECT_EQ(seen[0].content_type, "application/x-ndjson");
  EXPECT_EQ(seen[1].body, "{\"index\":{}}\n{\"n\":1}\n");
  EXPECT_EQ(seen[1].content_encoding, "");
  EXPECT_EQ(seen[2].content_encoding, "gzip");
}

TEST_F(EsHttpClientTest, RefusesAnUntrustedCertificate) {
  auto client = Client("127.0.0.1", TlsConfig{});  // system trust store only
  HttpResponse r = Post(*client, "{}\n");
  ASSERT_FALSE(r.error.ok());
  EXPECT_NE(r.error.message().find("TLS handshake"), std::string::npos) << r.error.ToString();
  EXPECT_NE(r.error.message().find("certificate verify failed"), std::string::npos) << r.error.ToString();
  client.reset();
  EXPECT_TRUE(server_->seen().empty());
}

TEST_F(EsHttpClientTest, ChecksTheHostName) {
  TlsConfig tls;
  tls.ca_file = cert_;
  // Trusted chain, but the certificate names 127.0.0.1, not localhost.
  auto client = Client("localhost", tls);
  HttpResponse r = Post(*client, "{}\n");
  ASSERT_FALSE(r.error.ok());
  EXPECT_NE(r.error.message().find("TLS handshake"), std::string::npos) << r.error.ToString();
  tls.verify_hostname = false;
  auto relaxed = Client("localhost", tls);
  r = Post(*relaxed, "{}\n");
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
}

TEST_F(EsHttpClientTest, VerificationCanBeTurnedOff) {
  TlsConfig tls;
  tls.verify_certificate = false;
  auto client = Client("127.0.0.1", tls);
  HttpResponse r = Post(*client, "{}\n");
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.status, 200);
}

// Mutual TLS: a server that asks for a client certificate gets the one of
// tls.crt_file / tls.key_file, and refuses a client without one.
TEST_F(EsHttpClientTest, PresentsAClientCertificateToAServerThatAsksForOne) {
  const std::string client_cert = dir_ / "client.pem", client_key = dir_ / "client-key.pem";
  ASSERT_TRUE(MakeCertificate("/CN=tributary", client_cert, client_key));
  server_ = std::make_unique<TlsServer>(cert_, key_, client_cert);
  TlsConfig tls;
  tls.ca_file = cert_;
  auto anonymous = Client("127.0.0.1", tls);
  HttpResponse r = Post(*anonymous, "{}\n");
  EXPECT_FALSE(r.error.ok());
  EXPECT_TRUE(server_->seen().empty());
  tls.crt_file = client_cert;
  tls.key_file = client_key;
  auto client = Client("127.0.0.1", tls);
  r = Post(*client, "{\"index\":{}}\n{}\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(server_->seen().size(), 1u);
  // The server's key is not the client certificate's: caught at start.
  HttpClientOptions o;
  o.endpoints.push_back(ParseEndpoint("https://127.0.0.1:1").value());
  o.tls.crt_file = client_cert;
  o.tls.key_file = key_;
  auto mismatched = HttpClient::Create(std::move(o));
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("tls.key_file " + key_), std::string::npos)
      << mismatched.status().ToString();
}

TEST(EsHttpClientConfigTest, UnreadableCaFileIsAConfigError) {
  HttpClientOptions o;
  o.endpoints.push_back(ParseEndpoint("https://127.0.0.1:1").value());
  o.tls.ca_file = "/nonexistent/ca.pem";
  auto c = HttpClient::Create(std::move(o));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

}  // namespace
}  // namespace tributary::es

namespace tributary::es {
namespace {

size_t OpenSockets() {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec))
    n += std::filesystem::read_symlink(e.path(), ec).string().rfind("socket:", 0) == 0;
  return n;
}

// A burst of requests opens a connection each; afterwards only
// max_idle_per_endpoint stay open (before: up to 256, for good).
TEST(EsHttpClientPoolTest, KeepsAtMostMaxIdleConnectionsAfterABurst) {
  tributary::test_support::EsBulkServer es({"--delay-ms", "200"});
  ASSERT_TRUE(es.ok()) << es.error();
  const size_t before = OpenSockets();
  HttpClientOptions o;
  o.endpoints.push_back(ParseEndpoint(es.url()).value());
  o.max_idle_per_endpoint = 3;
  auto client = std::move(HttpClient::Create(std::move(o))).value();
  client->Start();
  const int kBurst = 12;
  std::vector<std::promise<HttpResponse>> done(kBurst);
  for (int i = 0; i < kBurst; ++i)
    client->Post("/_bulk", std::make_shared<const std::string>("{\"index\":{\"_index\":\"x\"}}\n{\"n\":1}\n"), false,
                 [&done, i](HttpResponse r) { done[i].set_value(std::move(r)); });
  for (auto& d : done) {
    HttpResponse r = d.get_future().get();
    ASSERT_TRUE(r.error.ok()) << r.error.ToString();
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_GE(es.stat("connections_opened"), kBurst);  // the server was slow: one connection per request
  EXPECT_TRUE(tributary::testing::WaitFor([&] { return OpenSockets() <= before + 3; }))
      << OpenSockets() - before << " sockets still open";
}

// Posts one small bulk request and waits for its response.
HttpResponse PostOne(HttpClient& client) {
  std::promise<HttpResponse> done;
  client.Post("/_bulk", std::make_shared<const std::string>("{\"index\":{\"_index\":\"x\"}}\n{\"n\":1}\n"), false,
              [&done](HttpResponse r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

// The server reads a request on a kept-alive connection and closes it
// without a reply: the client sends it once more on a new connection, and
// says so in the response (the first copy may have been processed).
TEST(EsHttpClientPoolTest, ReportsARequestSentAgainAfterAKeptConnectionClosedUnanswered) {
  tributary::test_support::EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  HttpClientOptions o;
  o.endpoints.push_back(ParseEndpoint(es.url()).value());
  auto client = std::move(HttpClient::Create(std::move(o))).value();
  client->Start();
  HttpResponse first = PostOne(*client);
  ASSERT_TRUE(first.error.ok()) << first.error.ToString();
  EXPECT_FALSE(first.resent);
  ASSERT_TRUE(es.set_faults(R"({"close_connections": 1})"));
  HttpResponse second = PostOne(*client);
  ASSERT_TRUE(second.error.ok()) << second.error.ToString();
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_TRUE(second.resent);
  EXPECT_NE(second.resent_after.find("closed without a response"), std::string::npos) << second.resent_after;
  EXPECT_GT(second.first_attempt.count(), 0);  // each attempt's share, for the sink's histogram
  EXPECT_LT(second.first_attempt, second.duration);
  EXPECT_EQ(es.stat("closed_connections"), 1);
  EXPECT_EQ(es.stat("bulk_requests"), 2);  // the dropped copy was read, not processed
  HttpResponse third = PostOne(*client);
  ASSERT_TRUE(third.error.ok()) << third.error.ToString();
  EXPECT_FALSE(third.resent);
}

// The server closes a kept-alive connection once it has been idle 200 ms
// (a proxy's idle timeout): the client notices before it writes the next
// request, and sends it on a new connection the first time, so it is not a
// resend.
TEST(EsHttpClientPoolTest, AKeptConnectionTheServerClosedWhileIdleIsReplacedBeforeUse) {
  tributary::test_support::EsBulkServer es({"--idle-timeout-ms", "200"});
  ASSERT_TRUE(es.ok()) << es.error();
  HttpClientOptions o;
  o.endpoints.push_back(ParseEndpoint(es.url()).value());
  auto client = std::move(HttpClient::Create(std::move(o))).value();
  client->Start();
  HttpResponse first = PostOne(*client);
  ASSERT_TRUE(first.error.ok()) << first.error.ToString();
  ASSERT_TRUE(tributary::testing::WaitFor([&] { return es.stat("idle_closed_connections") == 1; }));
  HttpResponse second = PostOne(*client);
  ASSERT_TRUE(second.error.ok()) << second.error.ToString();
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_FALSE(second.resent) << second.resent_after;
  EXPECT_EQ(es.stat("bulk_requests"), 2);
}

}  // namespace
}  // namespace tributary::es
