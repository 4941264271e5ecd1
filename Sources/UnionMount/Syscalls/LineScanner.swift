import CUnionMountShim

/// One line the block scanner recorded: where it ends and how many spaces precede its end (both relative to the
/// scan's start), and which of its first 64 bytes are digits or spaces.
package typealias ScannedLine = CUnionMount_line

/// The mount table's block scanner (`CUnionMount_scan_lines`, `scan.c`): from `from`, records the lines of
/// `base[..<total]` and their spaces until `spaceCapacity` spaces or `lineCapacity` lines are recorded (the buffers
/// need 64 and 65 slots of slack past them); returns the lines recorded, 0 when one line has more spaces than fit.
/// `implementation` forces a vector width for tests (0: the best the CPU has).
///
/// A library call of the package's own C shim, kept here with the system calls so that nothing above `Syscalls/`
/// calls C directly.
@inline(__always)
package func system_scan_lines(
    _ base: UnsafePointer<UInt8>, from: Int, total: Int, spaces: UnsafeMutablePointer<UInt32>, spaceCapacity: Int,
    lines: UnsafeMutablePointer<ScannedLine>, lineCapacity: Int, implementation: CInt = 0
) -> Int {
    CUnionMount_scan_lines(base, from, total, spaces, spaceCapacity, lines, lineCapacity, implementation)
}
