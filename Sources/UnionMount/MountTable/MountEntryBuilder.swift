/// Makes ``MountEntryStorage``s: the fields are decoded into a scratch buffer reused from entry to entry, then
/// copied once into the entry's own allocation of exactly their size.
///
/// Fields are given in ``MountEntryStorage/Field`` order, each exactly once, then ``finish()``. Every parser
/// (the fast mountinfo loop, the general line parser, the mounts parser), the statmount(2) conversion and
/// ``MountEntry``'s value initializers make their entries here, so the layout is the same whatever the source.
/// Deallocate when done.
struct MountEntryBuilder {
    private var bytes: UnsafeMutablePointer<UInt8>
    private var byteCapacity: Int
    private var used = 0
    private var ends: UnsafeMutablePointer<UInt32>
    private var endCapacity: Int
    private var endCount = 0
    private var fieldEnds = SIMD8<UInt32>()
    private var field = 0
    private var mountOptionCount: UInt32 = 0

    init() {
        byteCapacity = 4096
        bytes = .allocate(capacity: byteCapacity)
        endCapacity = 256
        ends = .allocate(capacity: endCapacity)
    }

    func deallocate() {
        bytes.deallocate()
        ends.deallocate()
    }

    /// Makes room for `more` bytes.
    @inline(__always)
    private mutating func reserve(_ more: Int) {
        guard used &+ more > byteCapacity else { return }
        grow(more)
    }

    @inline(never)
    private mutating func grow(_ more: Int) {
        let larger = max(byteCapacity * 2, used + more)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
        moved.initialize(from: bytes, count: used)
        bytes.deallocate()
        bytes = moved
        byteCapacity = larger
    }

    @inline(__always)
    private mutating func appendEnd(_ end: Int) {
        if endCount == endCapacity {
            let moved = UnsafeMutablePointer<UInt32>.allocate(capacity: endCapacity * 2)
            moved.initialize(from: ends, count: endCount)
            ends.deallocate()
            ends = moved
            endCapacity *= 2
        }
        ends[endCount] = UInt32(truncatingIfNeeded: end)
        endCount &+= 1
    }

    @inline(__always)
    private mutating func closeField() {
        fieldEnds[field] = UInt32(truncatingIfNeeded: used)
        if field == MountEntryStorage.Field.mountOptions.rawValue {
            mountOptionCount = UInt32(truncatingIfNeeded: endCount)
        }
        field &+= 1
    }

    /// Appends bytes as they are.
    @inline(__always)
    private mutating func copy(_ field: UnsafeBufferPointer<UInt8>) {
        guard let source = field.baseAddress, field.count > 0 else { return }
        reserve(field.count)
        (bytes + used).update(from: source, count: field.count)
        used &+= field.count
    }

    /// Appends `field` with its `\ooo` escapes decoded (``MountTableEscaping/escapedByte(_:at:)``).
    @inline(__always)
    private mutating func decode(_ field: UnsafeBufferPointer<UInt8>) {
        guard let source = field.baseAddress, field.count > 0 else { return }
        reserve(field.count)
        var index = 0
        while true {
            let next = Self.nextSpecial(source, from: index, to: field.count, comma: false)
            Self.copyRun(source + index, to: bytes + used, count: next &- index)
            used &+= next &- index
            guard next < field.count else { return }
            index = appendEscape(field, at: next)
        }
    }

    /// Appends the escape at `index` of `field` decoded, or its backslash as it is; returns where to go on.
    @inline(__always)
    private mutating func appendEscape(_ field: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        if let decoded = MountTableEscaping.escapedByte(field, at: index) {
            bytes[used] = decoded
            used &+= 1
            return index &+ 4
        }
        bytes[used] = MountTableEscaping.backslash
        used &+= 1
        return index &+ 1
    }

    /// Copies a run of bytes: eight at a time in line, memmove only for long runs (most fields are short, and
    /// the call costs more than the copy).
    @inline(__always)
    static func copyRun(_ source: UnsafePointer<UInt8>, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        guard count <= 64 else {
            target.update(from: source, count: count)
            return
        }
        var index = 0
        while index &+ 8 <= count {
            UnsafeMutableRawPointer(target + index).storeBytes(
                of: UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self), as: UInt64.self)
            index &+= 8
        }
        while index < count {
            target[index] = source[index]
            index &+= 1
        }
    }

    /// The index of the first backslash (or, with `comma`, comma) in `base[from..<end]`, or `end`.
    ///
    /// Eight bytes at a time (the lowest byte the zero-byte test marks is always a real match); fields are too
    /// short for memchr's call to pay, and most have no such byte.
    @inline(__always)
    static func nextSpecial(_ base: UnsafePointer<UInt8>, from: Int, to end: Int, comma: Bool) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let backslashes = ones &* UInt64(MountTableEscaping.backslash)
        let commas = comma ? ones &* UInt64(UInt8(ascii: ",")) : backslashes
        var index = from
        while index &+ 8 <= end {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            let left = word ^ backslashes
            let right = word ^ commas
            let marks = ((left &- ones) & ~left | (right &- ones) & ~right) & highs
            if marks != 0 { return index &+ marks.trailingZeroBitCount &>> 3 }
            index &+= 8
        }
        while index < end {
            let byte = base[index]
            if byte == MountTableEscaping.backslash || (comma && byte == UInt8(ascii: ",")) { return index }
            index &+= 1
        }
        return end
    }

    // MARK: Fields

    /// The next field, escaped as the mount table escapes it.
    mutating func escaped(_ field: UnsafeBufferPointer<UInt8>) {
        decode(field)
        closeField()
    }

    /// The next field, already decoded.
    mutating func plain(_ field: UnsafeBufferPointer<UInt8>) {
        copy(field)
        closeField()
    }

    /// The next field, already decoded.
    mutating func plain(_ field: [UInt8]) {
        field.withUnsafeBufferPointer { copy($0) }
        closeField()
    }

    /// The next field, an option list as the mount table prints it: split on its raw commas except inside a
    /// quoted LSM label (see ``MountTableEscaping/forEachOption(of:_:)``, which this follows), each option
    /// decoded, empty ones dropped. One pass: runs without a comma or backslash are copied whole.
    mutating func escapedList(_ field: UnsafeBufferPointer<UInt8>) {
        if let source = field.baseAddress, field.count > 0 {
            reserve(field.count)
            let listStart = used
            var pieceStart = used
            var index = 0
            var atPieceStart = true
            while index <= field.count {
                if atPieceStart {
                    atPieceStart = false
                    if index &+ 9 <= field.count, Self.mayOpenLabel(source[index]),
                        let open = OverlayGrammar.quotedValueStart(UnsafeBufferPointer(rebasing: field[index...]))
                    {
                        // Up to the closing quote (or the end), commas included.
                        var close = index &+ open &+ 1
                        while close < field.count && source[close] != OverlayGrammar.quote { close &+= 1 }
                        let stop = close < field.count ? close &+ 1 : field.count
                        while index < stop {
                            if source[index] == MountTableEscaping.backslash {
                                index = appendEscape(field, at: index)
                            } else {
                                bytes[used] = source[index]
                                used &+= 1
                                index &+= 1
                            }
                        }
                        continue
                    }
                }
                let next = Self.nextSpecial(source, from: index, to: field.count, comma: true)
                Self.copyRun(source + index, to: bytes + used, count: next &- index)
                used &+= next &- index
                if next < field.count && source[next] == MountTableEscaping.backslash {
                    index = appendEscape(field, at: next)
                    continue
                }
                // A comma or the end closes the option.
                if used > pieceStart {
                    appendEnd(used &- listStart)
                    pieceStart = used
                }
                index = next &+ 1
                atPieceStart = true
            }
        }
        closeField()
    }

    /// Whether an option starting with `byte` can be an LSM label (every such key ends in `context`).
    @inline(__always)
    private static func mayOpenLabel(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "c") || byte == UInt8(ascii: "f") || byte == UInt8(ascii: "d") || byte == UInt8(ascii: "r")
    }

    /// The next field, an option list of decoded options; empty ones are dropped.
    mutating func plainList(_ options: [[UInt8]]) {
        let listStart = used
        for option in options where !option.isEmpty {
            option.withUnsafeBufferPointer { copy($0) }
            appendEnd(used &- listStart)
        }
        closeField()
    }

    /// The storage of the fields given since the last call; the builder is ready for the next entry.
    mutating func finish() -> MountEntryStorage {
        precondition(field == 8, "MountEntryBuilder: \(field) of 8 fields given")
        let table = (used &+ 3) & ~3
        let size = table &+ endCount &* 4
        let header = MountEntryStorage.Header(
            ends: fieldEnds, mountOptionCount: mountOptionCount,
            superOptionCount: UInt32(truncatingIfNeeded: endCount) &- mountOptionCount,
            table: UInt32(truncatingIfNeeded: table), size: UInt32(truncatingIfNeeded: size))
        let storage = unsafeDowncast(
            MountEntryStorage.create(minimumCapacity: size) { _ in header }, to: MountEntryStorage.self)
        storage.withUnsafeMutablePointerToElements { elements in
            elements.initialize(from: bytes, count: used)
            (elements + used).initialize(repeating: 0, count: table &- used)
            UnsafeMutableRawPointer(elements + table).copyMemory(from: ends, byteCount: endCount &* 4)
        }
        used = 0
        endCount = 0
        field = 0
        mountOptionCount = 0
        return storage
    }
}
