package engineio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// panicky echoes, except that the message "boom" panics.
func panicky(s *Session) {
	s.OnMessage(func(d []byte, b bool) {
		if string(d) == "boom" {
			panic("handler bug")
		}
		s.Send(NewMessage(d, b))
	})
}

// A panic in an application handler must not take the process down or wedge
// the session: the style guide (principle 9) asks to recover it and
// disconnect only that session. The scenario runs in a child process so a
// crash fails this test instead of the whole run.
func TestHandlerPanic(t *testing.T) {
	if os.Getenv("ENGINEIO_PANIC_CHILD") == "1" {
		handlerPanicScenario(t)
		return
	}
	for _, name := range []string{"websocket", "polling"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHandlerPanic$/^"+name+"$", "-test.v")
			cmd.Env = append(os.Environ(), "ENGINEIO_PANIC_CHILD=1")
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("scenario hung for 15s:\n%s", lastLines(buf.String(), 20))
			}
			if err != nil {
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				if len(lines) > 30 {
					lines = lines[:30]
				}
				t.Fatalf("scenario failed (%v):\n%s", err, strings.Join(lines, "\n"))
			}
		})
	}
}

func handlerPanicScenario(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		e := newEnv(t, Config{}, panicky)
		a := e.dialWS("EIO=4&transport=websocket")
		opA := a.readOpen()
		b := e.dialWS("EIO=4&transport=websocket")
		b.readOpen()
		a.sendText("4boom")
		a.expectEnd(2 * time.Second)
		waitClosed(t, e.session(opA.SID))
		b.sendText("4fine")
		b.expectText("4fine")
	})
	t.Run("polling", func(t *testing.T) {
		e := newEnv(t, Config{}, panicky)
		sid, _ := e.handshake("")
		done := make(chan response, 1)
		go func() {
			done <- e.request("POST", "EIO=4&transport=polling&sid="+sid, "4boom", "Content-Type", "text/plain")
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("POST with a panicking handler did not complete")
		}
		// The session is closed, or at least still usable: nothing hangs.
		next := make(chan response, 1)
		go func() {
			next <- e.request("POST", "EIO=4&transport=polling&sid="+sid, "4after", "Content-Type", "text/plain")
		}()
		select {
		case <-next:
		case <-time.After(2 * time.Second):
			// Cleanup would wait forever for the stuck handler: report and
			// end the child now.
			fmt.Println("FAIL: the session is wedged after a handler panic: the next POST hangs (deliverMu never unlocked)")
			os.Exit(3)
		}
		if e.isOpen(sid) {
			t.Errorf("session still open after its handler panicked, want it closed")
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
