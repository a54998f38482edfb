package pgtest

import "syscall"

// sysProcAttr runs the server as cred, in its own process group (a ^C in
// the terminal goes to the test binary, whose cleanup shuts it down), and
// has the kernel kill it if the test binary dies without cleaning up.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
