#include "clients/cpp/internal/work_outbox.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace taskd::internal {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

v1::WorkRequest Progress(int percent) {
  v1::WorkRequest request;
  request.mutable_progress()->set_percent(percent);
  return request;
}

// Records the writes; the first one can be held until released, and writes
// can be made to fail.
class FakeStream {
 public:
  struct Written {
    int percent;
    bool more;
  };

  WorkOutbox::WriteFn WriteFn() {
    return [this](const v1::WorkRequest& request, bool more) {
      if (hold_first_ && !first_entered_.HasBeenNotified()) {
        first_entered_.Notify();
        release_first_.WaitForNotificationWithTimeout(kWait);
      }
      absl::MutexLock lock(&mu_);
      written_.push_back({request.progress().percent(), more});
      return !fail_;
    };
  }
  WorkOutbox::WritesDoneFn WritesDoneFn() {
    return [this] {
      absl::MutexLock lock(&mu_);
      ++writes_done_;
      return true;
    };
  }

  void HoldFirstWrite() { hold_first_ = true; }
  bool WaitFirstWriteEntered() {
    return first_entered_.WaitForNotificationWithTimeout(kWait);
  }
  void ReleaseFirstWrite() {
    if (!release_first_.HasBeenNotified()) release_first_.Notify();
  }
  void FailWrites() {
    absl::MutexLock lock(&mu_);
    fail_ = true;
  }
  std::vector<Written> written() {
    absl::MutexLock lock(&mu_);
    return written_;
  }
  int writes_done() {
    absl::MutexLock lock(&mu_);
    return writes_done_;
  }

 private:
  bool hold_first_ = false;  // set before the outbox is used
  absl::Notification first_entered_;
  absl::Notification release_first_;
  absl::Mutex mu_;
  std::vector<Written> written_ ABSL_GUARDED_BY(mu_);
  int writes_done_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(WorkOutboxTest, LoneMessageIsWrittenAtOnceWithoutHint) {
  FakeStream stream;
  WorkOutbox outbox(stream.WriteFn(), stream.WritesDoneFn());
  EXPECT_TRUE(outbox.Send(Progress(1)).ok());
  EXPECT_TRUE(outbox.Send(Progress(2)).ok());
  std::vector<FakeStream::Written> written = stream.written();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[0].percent, 1);
  EXPECT_FALSE(written[0].more);
  EXPECT_EQ(written[1].percent, 2);
  EXPECT_FALSE(written[1].more);
}

TEST(WorkOutboxTest, CloseAfterQueuedWithNothingQueuedHalfClosesAtOnce) {
  FakeStream stream;
  WorkOutbox outbox(stream.WriteFn(), stream.WritesDoneFn());
  outbox.CloseAfterQueued();
  EXPECT_EQ(stream.writes_done(), 1);
}

TEST(WorkOutboxTest, BrokenStreamFailsTheWriterAndLaterSends) {
  FakeStream stream;
  WorkOutbox outbox(stream.WriteFn(), stream.WritesDoneFn());
  stream.FailWrites();
  EXPECT_EQ(outbox.Send(Progress(1)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(outbox.Send(Progress(2)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(stream.written().size(), 1u);
  outbox.CloseAfterQueued();
  EXPECT_EQ(stream.writes_done(), 0);
}

// A writer thread is in the stream's first write (message 1), held there
// until the test releases it.
class HeldWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stream_.HoldFirstWrite();
    writer_ =
        std::thread([this] { writer_status_ = outbox_.Send(Progress(1)); });
    ASSERT_TRUE(stream_.WaitFirstWriteEntered());
  }
  void TearDown() override { ReleaseWriter(); }
  void ReleaseWriter() {
    stream_.ReleaseFirstWrite();
    if (writer_.joinable()) writer_.join();
  }

  FakeStream stream_;
  WorkOutbox outbox_{stream_.WriteFn(), stream_.WritesDoneFn()};
  std::thread writer_;
  absl::Status writer_status_;
};

TEST_F(HeldWriteTest, MessagesQueuedBehindAWriteLeaveAsOneBatch) {
  // Another thread is writing: these only queue, and return at once.
  EXPECT_TRUE(outbox_.Send(Progress(2)).ok());
  EXPECT_TRUE(outbox_.Send(Progress(3)).ok());
  EXPECT_TRUE(outbox_.Send(Progress(4)).ok());
  EXPECT_EQ(stream_.written().size(), 0u);
  ReleaseWriter();
  EXPECT_TRUE(writer_status_.ok());
  std::vector<FakeStream::Written> written = stream_.written();
  ASSERT_EQ(written.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(written[i].percent, i + 1);
  EXPECT_FALSE(written[0].more);
  EXPECT_TRUE(written[1].more);
  EXPECT_TRUE(written[2].more);
  EXPECT_FALSE(written[3].more);  // the batch's last one flushes it
}

TEST_F(HeldWriteTest, CloseAfterQueuedWritesTheQueueThenHalfCloses) {
  EXPECT_TRUE(outbox_.Send(Progress(2)).ok());
  outbox_.CloseAfterQueued();
  EXPECT_EQ(outbox_.Send(Progress(3)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream_.writes_done(), 0);  // the writer half-closes, later
  ReleaseWriter();
  ASSERT_EQ(stream_.written().size(), 2u);
  EXPECT_EQ(stream_.writes_done(), 1);
  outbox_.CloseAfterQueued();
  outbox_.Close();
  EXPECT_EQ(stream_.writes_done(), 1);
}

TEST_F(HeldWriteTest, CloseDropsTheQueueAndWaitsForTheWrite) {
  EXPECT_TRUE(outbox_.Send(Progress(2)).ok());
  absl::Notification closed;
  std::thread closer([&] {
    outbox_.Close();
    closed.Notify();
  });
  // Until the closer got in, sends still queue (and are dropped with 2).
  while (outbox_.Send(Progress(99)).ok()) std::this_thread::yield();
  // Close() cannot return while the write is in progress.
  EXPECT_FALSE(closed.HasBeenNotified());
  ReleaseWriter();
  closer.join();
  ASSERT_EQ(stream_.written().size(), 1u);  // message 2 was dropped
  EXPECT_EQ(outbox_.Send(Progress(3)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream_.writes_done(), 0);
}

}  // namespace
}  // namespace taskd::internal
