// cmd_metrics.cc: `shmbus metrics --listen ADDR:PORT`: serves GET /metrics, the
// Prometheus text of every stream of the namespace (or of every namespace with --all),
// over HTTP (Debian's cpp-httplib), until SIGINT/SIGTERM.  Each scrape reads the shared
// memory anew (collect.h); the text is tools/stat's prometheus_text(), the same as
// `stat --format prometheus`.  The first line of stdout is the bound address (with
// port 0, the one the kernel chose), as kafka-mock prints its bootstraps.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "collect.h"
#include "commands.h"
#include "shmbus/prometheus.h"
#include "shmbus/shmbus.h"
#include "signals.h"

namespace shmbus::tools {
namespace {

// Worker threads: a slow client holds one until its read times out.
constexpr int kMetricsWorkers = 8;
// Read and write timeout of a client connection (each read, each write).
constexpr time_t kMetricsIoTimeoutSeconds = 5;
// How long SIGTERM/SIGINT waits for workers still serving clients before exiting anyway.
constexpr std::chrono::milliseconds kMetricsStopGrace{2000};

struct ListenAddress {
  std::string host;  // numeric, without brackets
  int port = 0;
  bool v6 = false;
  std::string text() const { return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port); }
};

// "127.0.0.1:9464", "[::1]:9464", "localhost:9464" (loopback); nullopt if not that.
std::optional<ListenAddress> parse_listen(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  ListenAddress a;
  std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  a.port = std::stoi(port);
  if (a.port > 65535) return std::nullopt;
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return std::nullopt;
    a.v6 = true;
  } else {
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) return std::nullopt;
  }
  a.host = host;
  return a;
}

// Why binding `a` fails, from a bind of our own (cpp-httplib only says that it failed).
std::string bind_error(const ListenAddress& a) {
  const int fd = socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (a.v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET6, a.host.c_str(), &sa.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  const std::string why = rc == 0 ? "cannot listen" : std::strerror(errno);
  close(fd);
  return why;
}

}  // namespace

int cmd_metrics(const MetricsArgs& a) {
  const std::string listen = a.listen.empty() ? kDefaultMetricsListen : a.listen;
  const auto addr = parse_listen(listen);
  if (!addr)
    return fail("--listen: '" + listen +
                    "' is not ADDR:PORT with a numeric address and a port from 0 to 65535 "
                    "(e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464)",
                kExitUsage);
  // --all serves every namespace: SHMBUS_NAMESPACE plays no part.
  const auto ns_or = a.all ? std::optional<std::string>(std::string()) : command_namespace(a.ns);
  if (!ns_or) return kExitUsage;
  const std::string ns = *ns_or;
  install_stop_handlers();

  // On the heap and never freed: a worker still held by a client that trickles its
  // request when we stop is left running (see below), and must not outlive the server.
  // Held by a static pointer, so that LeakSanitizer sees it reachable, not leaked.
  static httplib::Server* metrics_server = nullptr;
  metrics_server = new httplib::Server;
  auto& server = *metrics_server;
  // cpp-httplib's default options add SO_REUSEPORT, with which a second `metrics` on
  // the same port binds too and the kernel spreads scrapes over both: SO_REUSEADDR only
  // (a restart may bind while old connections are in TIME_WAIT), so the second fails.
  server.set_socket_options([](socket_t sock) {
    int one = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  });
  // Scrapes are rare and cheap, but a slow or idle client holds a worker for up to the
  // read timeout per read: enough workers that a few of them cannot starve a scrape.
  server.new_task_queue = [] { return new httplib::ThreadPool(kMetricsWorkers); };
  server.set_read_timeout(kMetricsIoTimeoutSeconds);
  server.set_write_timeout(kMetricsIoTimeoutSeconds);
  // An idle kept-alive connection holds a worker for at most 1 s, and for 10 requests.
  server.set_keep_alive_timeout(1);
  server.set_keep_alive_max_count(10);
  // /metrics is read-only: other methods get 405 with the ones it takes.
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.path != "/metrics" || req.method == "GET" || req.method == "HEAD")
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("method not allowed: /metrics takes GET or HEAD\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    const std::vector<std::string> namespaces = a.all ? all_namespaces() : std::vector<std::string>{ns};
    res.set_content(prometheus_text(collect_namespaces(namespaces)), kPrometheusContentType);
  });
  ListenAddress bound = *addr;
  if (addr->port == 0) {
    bound.port = server.bind_to_any_port(addr->host);
    if (bound.port <= 0) return fail("metrics: cannot listen on " + addr->text() + ": " + bind_error(*addr));
  } else if (!server.bind_to_port(addr->host, addr->port)) {
    return fail("metrics: cannot listen on " + addr->text() + ": " + bind_error(*addr));
  }
  // The first line of stdout, at once: scripts read it to find the endpoint.
  std::printf("%s\n", bound.text().c_str());
  std::fflush(stdout);

  // ended: release by the server thread when listen_after_bind() returned, acquire by
  // this one, so that join() never waits on a thread still inside the server.
  std::atomic<bool> ended{false};
  std::thread serve([&server, &ended] {
    server.listen_after_bind();
    ended.store(true, std::memory_order_release);
  });
  while (!stop_requested() && !ended.load(std::memory_order_acquire))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // stop() closes the listening socket; listen_after_bind() then waits for the workers.
  // stop() is lost if it comes before the thread started listening: repeat it.  A worker
  // whose client trickles its request (each byte restarts the read timeout) may never
  // finish: past kMetricsStopGrace we end the process without waiting for it.
  const auto give_up = std::chrono::steady_clock::now() + kMetricsStopGrace;
  while (!ended.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < give_up) {
    server.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!ended.load(std::memory_order_acquire)) {
    // The exit code main() would give; _Exit: no static destructor may run under a
    // worker that is still reading a slow request.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(stop_signal() == SIGINT ? kExitInterrupted : kExitOk);
  }
  serve.join();
  if (!stop_requested()) return fail("metrics: the HTTP server on " + bound.text() + " stopped");
  return kExitOk;  // main() turns a SIGINT into 130
}

}  // namespace shmbus::tools
