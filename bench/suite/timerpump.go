package main

import (
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// An idle Go process waits for its next timer in epoll_wait, whose timeout
// is in whole milliseconds (runtime/netpoll_epoll.go): a sender that sleeps
// until its next scheduled send can wake up to 1 ms late, and the suite
// measures every latency from the scheduled time, so that lateness would be
// charged to the server. A timerfd that ticks every timerPumpInterval wakes
// the poller, and the scheduler then runs whatever timers are due: the
// senders leave within about one interval of their schedule (the phases
// record how late they were: send_late).
const timerPumpInterval = 100 * time.Microsecond

// timerPumpTicks counts the pump's wake-ups (for its test).
var timerPumpTicks atomic.Int64

// startTimerPump runs the pump until the returned stop is called.
func startTimerPump(interval time.Duration) (stop func(), err error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	ts := unix.NsecToTimespec(interval.Nanoseconds())
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("timerfd_settime", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd") // non-blocking: Go's poller waits for it
	done := make(chan struct{})
	go func() {
		defer close(done)
		var expirations [8]byte
		for {
			if _, err := f.Read(expirations[:]); err != nil {
				return // closed by stop
			}
			timerPumpTicks.Add(1)
		}
	}()
	return func() {
		f.Close()
		<-done
	}, nil
}
