// The stand-in for a baseline that was not found at build time or cannot run.
#include "transport.h"

namespace bench {
namespace {

class Unavailable final : public Transport {
 public:
  Unavailable(std::string name, std::string reason)
      : name_(std::move(name)), reason_(std::move(reason)) {}
  std::string name() const override { return name_; }
  std::string unavailable() const override { return reason_; }
  bool prepare(const ChannelSpec&, std::string* err) override {
    *err = reason_;
    return false;
  }
  std::unique_ptr<Sender> open_sender(int, std::string* err) override {
    *err = reason_;
    return nullptr;
  }
  std::unique_ptr<Receiver> open_receiver(int, std::string* err) override {
    *err = reason_;
    return nullptr;
  }
  std::string cleanup() override { return {}; }

 private:
  std::string name_, reason_;
};

}  // namespace

std::unique_ptr<Transport> make_unavailable(std::string name, std::string reason) {
  return std::make_unique<Unavailable>(std::move(name), std::move(reason));
}

}  // namespace bench
