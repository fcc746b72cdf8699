//! The seccomp program every sandboxed process runs under.
//!
//! It refuses the system calls that reach past the sandbox or into the
//! kernel's own machinery: tracing other processes, loading kernels or
//! modules, mounting, keyrings, new namespaces, BPF, `io_uring` (which could
//! issue the rest out of the filter's sight), handles that open files by
//! inode, and creating device nodes. Without network, sockets of any family
//! but `AF_UNIX` are refused too. A foreign architecture (a 32-bit or x32
//! entry) kills the process, so no call can slip past under another number.

/// The native architecture's `AUDIT_ARCH_*` value, `None` where the
/// sandbox has no program.
#[cfg(target_arch = "x86_64")]
pub(super) const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "aarch64")]
pub(super) const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) const AUDIT_ARCH: Option<u32> = None;

/// `SECCOMP_RET_ERRNO`: the call fails with the errno in the low 16 bits.
pub(super) const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const X32_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `struct seccomp_data`: nr at 0, arch at 4, args from 16, 8 bytes each
/// (their low halves first on the little-endian targets supported).
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}

const S_IFMT: u32 = 0o170_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;

/// `clone(2)` flags that make a namespace.
const CLONE_NEW_ANY: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

/// Calls refused outright with `EPERM`.
fn refused() -> Vec<libc::c_long> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    calls
}

/// Instructions with their jump offsets, built front to back.
struct Program(Vec<libc::sock_filter>);

impl Program {
    fn op(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.0.push(libc::sock_filter { code, jt, jf, k });
    }

    fn load(&mut self, offset: u32) {
        self.op(LD_W_ABS, 0, 0, offset);
    }

    fn ret(&mut self, k: u32) {
        self.op(RET_K, 0, 0, k);
    }

    /// `if nr == call { <body> }`; the body must end in a return and the
    /// accumulator holds `nr` again after the block.
    fn when_call(&mut self, call: u32, body: impl FnOnce(&mut Program)) {
        let at = self.0.len();
        self.op(JEQ_K, 0, 0, call);
        body(self);
        let skip = self.0.len() - at - 1;
        // Blocks are a handful of instructions: the offset always fits.
        self.0[at].jf = u8::try_from(skip).unwrap_or(u8::MAX);
    }
}

fn nr(call: libc::c_long) -> Option<u32> {
    u32::try_from(call).ok()
}

/// The whole program; `None` on an architecture without one.
pub(super) fn program(allow_network: bool) -> Option<Vec<libc::sock_filter>> {
    let arch = AUDIT_ARCH?;
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let mut p = Program(Vec::new());
    p.load(4);
    p.op(JEQ_K, 1, 0, arch);
    p.ret(RET_KILL_PROCESS);
    p.load(0);
    p.op(JGE_K, 0, 1, X32_BIT);
    p.ret(RET_KILL_PROCESS);

    for call in refused() {
        p.when_call(nr(call)?, |p| p.ret(eperm));
    }
    // Device nodes: FIFOs and sockets made by mknod stay allowed.
    let mut mknod_at = vec![(nr(libc::SYS_mknodat)?, arg(2))];
    #[cfg(target_arch = "x86_64")]
    mknod_at.push((nr(libc::SYS_mknod)?, arg(1)));
    for (call, mode) in mknod_at {
        p.when_call(call, |p| {
            p.load(mode);
            p.op(ALU_AND_K, 0, 0, S_IFMT);
            p.op(JEQ_K, 2, 0, S_IFCHR);
            p.op(JEQ_K, 1, 0, S_IFBLK);
            p.ret(RET_ALLOW);
            p.ret(eperm);
        });
    }
    p.when_call(nr(libc::SYS_clone)?, |p| {
        p.load(arg(0));
        p.op(JSET_K, 1, 0, CLONE_NEW_ANY);
        p.ret(RET_ALLOW);
        p.ret(eperm);
    });
    // clone3 passes its flags in memory the filter cannot read: ENOSYS makes
    // the C library fall back to clone, which is checked above.
    p.when_call(nr(libc::SYS_clone3)?, |p| {
        p.ret(RET_ERRNO | libc::ENOSYS as u32)
    });
    if !allow_network {
        p.when_call(nr(libc::SYS_socket)?, |p| {
            p.load(arg(0));
            p.op(JEQ_K, 0, 1, libc::AF_UNIX as u32);
            p.ret(RET_ALLOW);
            p.ret(RET_ERRNO | libc::EACCES as u32);
        });
    }
    p.ret(RET_ALLOW);
    Some(p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(prog: &[libc::sock_filter]) {
        assert!(
            prog.len() < 4096,
            "the kernel takes at most 4096 instructions"
        );
        for (i, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == 0x05 {
                assert!(i + 1 + (ins.jt as usize) < prog.len(), "jt of {i}");
                assert!(i + 1 + (ins.jf as usize) < prog.len(), "jf of {i}");
            }
        }
        assert_eq!(prog.last().map(|i| i.code), Some(RET_K));
    }

    /// Runs the program over one call, the way the kernel would.
    fn verdict(prog: &[libc::sock_filter], arch: u32, call: u32, args: [u32; 3]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = call;
        data[1] = arch;
        for (i, a) in args.iter().enumerate() {
            data[4 + 2 * i] = *a;
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = prog[pc];
            pc += 1;
            match ins.code {
                LD_W_ABS => acc = data[ins.k as usize / 4],
                ALU_AND_K => acc &= ins.k,
                RET_K => return ins.k,
                JEQ_K | JGE_K | JSET_K => {
                    let hit = match ins.code {
                        JEQ_K => acc == ins.k,
                        JGE_K => acc >= ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += usize::from(if hit { ins.jt } else { ins.jf });
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn the_program_refuses_what_it_says() {
        let Some(arch) = AUDIT_ARCH else { return };
        for network in [false, true] {
            let prog = program(network).unwrap();
            check(&prog);
            let v = |call: libc::c_long, args| verdict(&prog, arch, call as u32, args);
            let eperm = RET_ERRNO | libc::EPERM as u32;
            assert_eq!(v(libc::SYS_ptrace, [0; 3]), eperm);
            assert_eq!(v(libc::SYS_mount, [0; 3]), eperm);
            assert_eq!(v(libc::SYS_keyctl, [0; 3]), eperm);
            assert_eq!(v(libc::SYS_read, [0; 3]), RET_ALLOW);
            assert_eq!(v(libc::SYS_mknodat, [0, 0, S_IFCHR | 0o600]), eperm);
            assert_eq!(v(libc::SYS_mknodat, [0, 0, S_IFBLK | 0o600]), eperm);
            assert_eq!(v(libc::SYS_mknodat, [0, 0, 0o010_000 | 0o600]), RET_ALLOW);
            let newuser = libc::CLONE_NEWUSER as u32;
            assert_eq!(v(libc::SYS_clone, [newuser | 17, 0, 0]), eperm);
            assert_eq!(v(libc::SYS_clone, [17, 0, 0]), RET_ALLOW);
            assert_eq!(v(libc::SYS_clone3, [0; 3]), RET_ERRNO | libc::ENOSYS as u32);
            let inet = v(libc::SYS_socket, [libc::AF_INET as u32, 1, 0]);
            let unix = v(libc::SYS_socket, [libc::AF_UNIX as u32, 1, 0]);
            assert_eq!(unix, RET_ALLOW);
            if network {
                assert_eq!(inet, RET_ALLOW);
            } else {
                assert_eq!(inet, RET_ERRNO | libc::EACCES as u32);
            }
            assert_eq!(verdict(&prog, 0x4000_0003, 0, [0; 3]), RET_KILL_PROCESS);
            assert_eq!(verdict(&prog, arch, X32_BIT | 1, [0; 3]), RET_KILL_PROCESS);
        }
    }
}
