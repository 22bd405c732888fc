// consumer_core.cc: see consumer_core.h.
#include "consumer_core.h"

#include "errors.h"
#include "shmbus/tail.h"

namespace shmbus::python {

ConsumerCore::~ConsumerCore() {
  // In a fork child the consumer is the parent's: closing it would detach the parent.
  if (generation != fork_generation()) {
    (void)consumer.release();
    (void)replay.release();
  }
}

void ConsumerCore::throw_closed() const {
  throw_error(Errc::kClosed, generation != fork_generation()
                                 ? "consumer of stream '" + name +
                                       "' was opened before fork(): open a new one in this process"
                                 : "consumer of stream '" + name + "' is closed");
}

void ConsumerCore::snapshot() noexcept {
  if (replay) {  // gaps: counted by the read loop
    next_seq.store(replay->next_seq(), std::memory_order_relaxed);  // relaxed: display only
    return;
  }
  next_seq.store(consumer->ring().next_seq(), std::memory_order_relaxed);  // relaxed: display only
  lost.store(consumer->lost(), std::memory_order_relaxed);  // (less what the store supplied)
  gaps.store(consumer->ring().gaps(), std::memory_order_relaxed);
  lost_exact.store(consumer->ring().lost_exact(), std::memory_order_relaxed);  // relaxed: display only
}

void open_consumer(ConsumerCore& c, const ConsumerOptions& opts, const std::string& data_dir) {
  if (!c.group.empty()) {
    Result<persist::GroupConsumer> r = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;  // open may wait for a creator still at work
      r = persist::GroupConsumer::open(c.ns, c.name, opts, data_dir);
    }
    c.consumer = std::make_unique<persist::GroupConsumer>(unwrap(std::move(r)));
    c.durable = c.consumer->ring().durable();
    return;
  }
  // Without a group, persist/ decides: the store then the ring, or the ring.
  persist::TailOptions to;
  to.start = opts.start;
  to.wait = opts.wait;
  to.read_only = opts.read_only;
  to.data_dir = data_dir;
  Result<persist::Tail> r = make_error(Errc::kIo, "");
  {
    py::gil_scoped_release nogil;  // may wait for a creator; opens the store: disk reads
    r = persist::open_tail(c.ns, c.name, to);
  }
  persist::Tail t = unwrap(std::move(r));
  if (t.replay) c.replay = std::make_unique<persist::ReplayConsumer>(std::move(*t.replay));
  else c.consumer = std::make_unique<persist::GroupConsumer>(std::move(*t.ring));
}

CoreLock::CoreLock(ConsumerCore& c) : c_(c) {
  if (!c_.mu.try_lock()) {
    if (c_.owner.load(std::memory_order_relaxed) == std::this_thread::get_id())  // relaxed: see below
      throw_error(Errc::kBusy, "consumer of stream '" + c_.name +
                                   "' re-entered while it was reading (from a finalizer?)");
    py::gil_scoped_release nogil;
    c_.mu.lock();
  }
  // relaxed: only the thread that stored it compares it with its own id (the re-entry
  // check above), and a thread always sees its own stores; another thread's stale value
  // is never its own id.  (seq_cst stores were 2 locked instructions a read.)
  c_.owner.store(std::this_thread::get_id(), std::memory_order_relaxed);
  held_ = true;
}

void CoreLock::unlock() {
  if (!held_) return;
  c_.owner.store(std::thread::id(), std::memory_order_relaxed);  // relaxed: see above
  c_.mu.unlock();
  held_ = false;
}

StartFrom to_start(const py::object& start) {
  if (start.is_none()) return StartFrom{};
  if (PyBool_Check(start.ptr()))
    throw py::type_error("start must be 'earliest', 'latest', 'committed', a sequence number "
                         "(int) or a datetime, not bool");
  if (is_index(start)) {
    return StartFrom::seq(uint64_arg(start, "start sequence number"));
  }
  if (py::isinstance<py::str>(start)) {
    const auto text = start.cast<std::string>();
    if (text == "committed") return StartFrom{};
    return unwrap(parse_start(text));
  }
  py::module_ dt = py::module_::import("datetime");
  if (py::isinstance(start, dt.attr("datetime"))) {
    // Naive means local time, as datetime.timestamp() has it.
    py::object aware = start.attr("tzinfo").is_none() ? start.attr("astimezone")() : start;
    py::object epoch = dt.attr("datetime")(1970, 1, 1, py::arg("tzinfo") = dt.attr("timezone").attr("utc"));
    py::object delta = aware - epoch;
    const int64_t days = delta.attr("days").cast<int64_t>();
    const int64_t secs = delta.attr("seconds").cast<int64_t>();
    const int64_t us = delta.attr("microseconds").cast<int64_t>();
    if (days < 0) throw_error(Errc::kInvalidArgument, "start time is before 1970");
    // In 64-bit nanoseconds up to the year 2554; a later time is after every record, as
    // the "@TIME" text's is (it overflowed: a year-2600 start rewound a group to the
    // oldest record, a year-2300 one was "before 1970"; a review).
    uint64_t ns = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(days) * 86400 + static_cast<uint64_t>(secs),
                               uint64_t{1'000'000'000}, &ns) ||
        __builtin_add_overflow(ns, static_cast<uint64_t>(us) * 1000, &ns))
      ns = UINT64_MAX;
    return StartFrom::time_ns(ns);
  }
  throw py::type_error("start must be 'earliest', 'latest', 'committed', a sequence number (int) "
                       "or a datetime, not " +
                       std::string(py::str(py::type::of(start).attr("__name__"))));
}

}  // namespace shmbus::python
