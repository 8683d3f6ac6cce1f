// A Go client (built with CGO_ENABLED=0: a static binary that makes its
// own system calls, so no preload reaches it). It connects to
// 127.0.0.1:PORT with Dialer.KeepAlive = -1, so that it sets no keepalive
// option itself, prints "connected LOCAL_PORT", then for each line on stdin
// prints the options its socket has, as it reads them itself:
//
//	SO_KEEPALIVE=1 TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=0
//
// It exits when stdin closes.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"syscall"
)

const tcpUserTimeout = 18

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go_client PORT")
		os.Exit(2)
	}
	d := net.Dialer{KeepAlive: -1}
	conn, err := d.Dial("tcp4", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tcp := conn.(*net.TCPConn)
	fmt.Printf("connected %d\n", tcp.LocalAddr().(*net.TCPAddr).Port)
	raw, err := tcp.SyscallConn()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var line string
		raw.Control(func(fd uintptr) {
			get := func(level, name int) int {
				v, err := syscall.GetsockoptInt(int(fd), level, name)
				if err != nil {
					return -1
				}
				return v
			}
			line = fmt.Sprintf("SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d",
				get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE), get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE),
				get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL), get(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT),
				get(syscall.IPPROTO_TCP, tcpUserTimeout))
		})
		fmt.Println(line)
	}
}
