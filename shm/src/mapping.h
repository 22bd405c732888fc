// mapping.h: one validated mapping of a stream's shared-memory object.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/interprocess/mapped_region.hpp>

#include "layout.h"
#include "shmbus/shmbus.h"

namespace shmbus {

class StreamMapping {
 public:
  // Creates and initialises a new stream; kExists when it is already there.
  static Result<std::shared_ptr<StreamMapping>> create(std::string_view ns, std::string_view name,
                                                       const StreamOptions& opts);
  // Opens and validates an existing stream (waits briefly for a creator still at work).
  static Result<std::shared_ptr<StreamMapping>> open(std::string_view ns, std::string_view name,
                                                     bool read_only);

  detail::StreamHeader* header() const noexcept { return hdr_; }
  std::byte* data() const noexcept { return data_; }
  detail::ProducerSlot* producer_slot(uint32_t i) const noexcept;
  detail::ConsumerSlot* consumer_slot(uint32_t i) const noexcept;
  uint64_t capacity() const noexcept { return capacity_; }
  uint64_t mask() const noexcept { return capacity_ - 1; }
  uint64_t max_record() const noexcept { return max_record_; }
  uint64_t salt() const noexcept { return salt_; }
  bool read_only() const noexcept { return read_only_; }
  const std::string& ns() const noexcept { return ns_; }
  const std::string& name() const noexcept { return name_; }
  detail::RecordHeader* record_at(uint64_t pos) const noexcept {
    return reinterpret_cast<detail::RecordHeader*>(data_ + (pos & (capacity_ - 1)));
  }
  // Maps every page of the ring now (producers and consumers, not `stat`), so that the
  // first lap pays no page faults on the hot path.
  void populate() noexcept;
  std::byte* payload_at(uint64_t pos) const noexcept {
    return data_ + (pos & (capacity_ - 1)) + sizeof(detail::RecordHeader);
  }

 private:
  StreamMapping() = default;
  Result<void> validate(uint64_t file_size);

  boost::interprocess::mapped_region region_;
  detail::StreamHeader* hdr_ = nullptr;
  std::byte* data_ = nullptr;
  // Copies of the validated identity: never re-read from shared memory, so a peer
  // that scribbles on the header cannot make this process index out of bounds.
  uint64_t capacity_ = 0;
  uint64_t max_record_ = 0;
  uint64_t salt_ = 0;
  bool read_only_ = false;
  std::string ns_, name_;
};

}  // namespace shmbus
