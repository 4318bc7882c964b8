// Task<T>: the coroutine type of native functions. A Task is lazy: it starts when awaited (by
// another Task) or when handed to Spawn, and resumes its awaiter when it finishes. Everything runs
// on the node's loop thread; a Task suspends only at a co_await on something that completes later
// (a remote read, a replicated write), in real time or in virtual time alike.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "core/status.h"

namespace enoki::node {

template <typename T>
class [[nodiscard]] Task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::exception_ptr error;
    std::coroutine_handle<> continuation;

    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct Resume {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          auto next = h.promise().continuation;
          return next ? next : std::noop_coroutine();
        }
        void await_resume() noexcept {}
      };
      return Resume{};
    }
    template <typename U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() { error = std::current_exception(); }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // Awaiting a Task runs it; the awaiter resumes with its value (or its exception rethrown).
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() {
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
    return std::move(*handle_.promise().value);
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace internal {
// A coroutine that starts at once and frees itself when it ends.
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }  // Drive catches everything
  };
};

template <typename T>
Detached Drive(Task<T> task, std::function<void(T)> done) {
  std::optional<T> result;
  try {
    result.emplace(co_await task);
  } catch (const std::exception& e) {
    result.emplace(core::Status::Internal(std::string("function threw: ") + e.what()));
  } catch (...) {
    result.emplace(core::Status::Internal("function threw a non-standard exception"));
  }
  done(std::move(*result));
}
}  // namespace internal

// Starts `task`, whose value type is core::Status or core::Result<U>; `done` gets its value, or
// INTERNAL naming the exception it threw. Runs until the task first suspends, so `done` may be
// called before Spawn returns.
template <typename T>
requires std::is_constructible_v<T, core::Status>
void Spawn(Task<T> task, std::function<void(T)> done) {
  internal::Drive(std::move(task), std::move(done));
}

}  // namespace enoki::node
