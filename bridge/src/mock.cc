// mock.cc: MockCluster on librdkafka's mock cluster (rdkafka_mock.h).
#include "client.h"  // rdkafka.h first: rdkafka_mock.h needs it

#include <librdkafka/rdkafka_mock.h>
#include "shmbus/kafka.h"

namespace shmbus::kafka {

struct MockCluster::Impl {
  detail::KafkaPtr rk;  // the handle the cluster hangs on; must outlive it
  rd_kafka_mock_cluster_t* mc = nullptr;
  ~Impl() {
    if (mc) rd_kafka_mock_cluster_destroy(mc);
  }
};

MockCluster::MockCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(impl_->mc);
}
MockCluster::~MockCluster() = default;

Result<std::unique_ptr<MockCluster>> MockCluster::start(int brokers,
                                                        const std::vector<TopicSpec>& topics) {
  if (brokers < 1 || brokers > 64)
    return make_error(Errc::kInvalidArgument, "--brokers must be from 1 to 64, not " + std::to_string(brokers));
  // A producer handle that never produces; the cluster runs on a thread of its own.
  // bootstrap.servers is not needed by the mock; quiet the handle's own logs.
  detail::ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  rd_kafka_conf_set(conf.get(), "log_level", "3", err, sizeof err);
  auto rk = detail::make_client(RD_KAFKA_PRODUCER, std::move(conf));
  if (!rk) return rk.error();
  auto impl = std::make_unique<Impl>();
  impl->rk = std::move(rk.value());
  impl->mc = rd_kafka_mock_cluster_new(impl->rk.get(), brokers);
  if (!impl->mc) return make_error(Errc::kIo, "cannot start the mock cluster (no loopback port?)");
  auto m = std::unique_ptr<MockCluster>(new MockCluster(std::move(impl)));
  for (const auto& t : topics)
    if (auto r = m->create_topic(t); !r) return r.error();
  return m;
}

Result<void> MockCluster::create_topic(const TopicSpec& t) {
  if (auto r = validate_topic(t.name); !r) return r;
  const auto e = rd_kafka_mock_topic_create(impl_->mc, t.name.c_str(), t.partitions, 1);
  if (e) return make_error(Errc::kIo, "cannot create topic '" + t.name + "': " + rd_kafka_err2str(e));
  return {};
}

Result<void> MockCluster::set_broker_down(int32_t broker_id) {
  const auto e = rd_kafka_mock_broker_set_down(impl_->mc, broker_id);
  if (e) return make_error(Errc::kInvalidArgument, std::string("broker ") + std::to_string(broker_id) + ": " + rd_kafka_err2str(e));
  return {};
}

Result<void> MockCluster::set_partition_leader(const std::string& topic, int32_t partition, int32_t broker_id) {
  const auto e = rd_kafka_mock_partition_set_leader(impl_->mc, topic.c_str(), partition, broker_id);
  if (e)
    return make_error(Errc::kInvalidArgument, topic + "[" + std::to_string(partition) + "] leader " +
                                                  std::to_string(broker_id) + ": " + rd_kafka_err2str(e));
  return {};
}

Result<void> MockCluster::set_broker_rtt(int32_t broker_id, int rtt_ms) {
  const auto e = rd_kafka_mock_broker_set_rtt(impl_->mc, broker_id, rtt_ms);
  if (e) return make_error(Errc::kInvalidArgument, std::string("broker ") + std::to_string(broker_id) + ": " + rd_kafka_err2str(e));
  return {};
}

void MockCluster::push_request_errors(int16_t api_key, int count, int error) {
  std::vector<rd_kafka_resp_err_t> errs(static_cast<size_t>(count), static_cast<rd_kafka_resp_err_t>(error));
  rd_kafka_mock_push_request_errors_array(impl_->mc, api_key, errs.size(), errs.data());
}

}  // namespace shmbus::kafka
