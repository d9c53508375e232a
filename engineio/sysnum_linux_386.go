package engineio

// linux/386 reached the socket calls only through socketcall until Linux
// 4.3 gave them numbers of their own; Go's syscall package does not name
// them. On an older kernel they fail with ENOSYS and the caller writes
// through the net.Conn instead, as after any failed direct write.
const (
	sysSendto   = 369
	sysRecvfrom = 371
	sysSendmsg  = 370
)
