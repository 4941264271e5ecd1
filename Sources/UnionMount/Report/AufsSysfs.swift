import SystemPackage

/// The branch state aufs publishes in sysfs: `/sys/fs/aufs/si_<id>/br<N>`, `brid<N>` and `xi_path`
/// (`fs/aufs/sysfs.c`, `sysaufs.c` of `sfjro/aufs-standalone`).
///
/// One directory `si_<id>` exists per aufs superblock; `<id>` is the lowercase hexadecimal value that the mount
/// options show as `si=<id>`. `br<N>` holds `<path>=<perm>[+<attr>…]` and a newline for the branch at index N
/// (0 = top), the path escaped by `seq_path` (bytes 0x01–0x20, `\` and 0x7f as `\ooo`); `brid<N>` holds that
/// branch's id in decimal (ids start at 64 and wrap around, so an id is reused after its branch is gone: it
/// identifies a branch while the mount lives, across renumbering, not forever); `xi_path` holds the
/// path of the external inode number file, or nothing with `noxino`.
///
/// The files are read with open(2)/read(2), each as one snapshot. aufs only try-locks the superblock for a
/// sysfs read, so a read fails with `EBUSY` while a remount or branch change runs: such a read is retried
/// ``busyRetries`` times, ``busyRetryInterval`` apart, and then reported as ``UnionMountError/Code/busy``.
public struct AufsSysfs: Sendable {
    /// One aufs branch as sysfs (`br<N>`, `brid<N>`) or, on a `brs=0` host, the mount options show it.
    public struct Branch: Sendable, Hashable {
        /// The branch index N of `br<N>`: 0 is the top branch.
        public var index: Int
        /// The branch root, decoded (the `\ooo` escapes resolved), as seen from the reader's root directory.
        public var path: FilePath
        /// The permission before the first `+` (`rw`, `ro` or `rr`).
        public var permission: AufsBranch.Permission
        /// The attributes after the permission, in the order aufs prints them (`["wh"]` for `ro+wh`). Names
        /// this library does not know are kept as written (a newer aufs may print more).
        public var attributes: [String]
        /// The branch id of `brid<N>`, stable while the branch is mounted; nil when the branch comes from the
        /// mount options of a `brs=0` host, which show no ids.
        public var id: Int?

        /// Creates a branch.
        public init(
            index: Int, path: FilePath, permission: AufsBranch.Permission, attributes: [String] = [], id: Int?
        ) {
            self.index = index
            self.path = path
            self.permission = permission
            self.attributes = attributes
            self.id = id
        }
    }

    /// The sysfs directory of aufs, `/sys/fs/aufs` by default (tests point it at a fixture tree).
    public var root: FilePath
    /// How many times a read that fails with `EBUSY` is repeated before it is reported as
    /// ``UnionMountError/Code/busy``; 20 by default.
    public var busyRetries: Int
    /// The pause before each repeated read; 5 ms by default.
    public var busyRetryInterval: Duration

    /// Reads one file whole: its bytes (at most ``maximumFileSize`` + 1), or the failed call and its errno.
    typealias FileReader = @Sendable (FilePath) -> Result<[UInt8], FileReadError>
    /// Waits between two reads of a busy file.
    typealias Sleeper = @Sendable (Duration) -> Void

    let reader: FileReader
    let sleeper: Sleeper

    /// How many times the branch list is read when it changes during the read, before giving up as busy.
    static let scanAttempts = 5
    /// The largest sysfs attribute: one page, and pages are at most 64 KiB on Linux.
    static let maximumFileSize = 64 * 1024

    /// Reads aufs' sysfs tree below `root` (`/sys/fs/aufs` by default).
    public init(root: FilePath = "/sys/fs/aufs") {
        self.init(root: root, reader: Self.readFile, sleeper: { sleep(for: $0) })
    }

    /// Reads through `reader` and waits with `sleeper`: the seam the tests use to simulate `EBUSY`.
    init(
        root: FilePath, busyRetries: Int = 20, busyRetryInterval: Duration = .milliseconds(5),
        reader: @escaping FileReader, sleeper: @escaping Sleeper
    ) {
        self.root = root
        self.busyRetries = busyRetries
        self.busyRetryInterval = busyRetryInterval
        self.reader = reader
        self.sleeper = sleeper
    }

    /// The branches of the aufs superblock `si` and its xino path, read from `<root>/si_<si>/br<N>`,
    /// `<root>/si_<si>/brid<N>` and `<root>/si_<si>/xi_path` (`/sys/fs/aufs/si_<si>/…` by default).
    ///
    /// `br0`, `br1`, … are read until one is missing: `ENOENT`, also when it comes from read(2) because the
    /// branch was deleted meanwhile, ends the list. Each branch is read as `brid<N>`, `br<N>`, `brid<N>` again;
    /// when the two ids differ (a branch was added or deleted in between and the files were renumbered) or an
    /// id repeats, the whole list is read again, up to 5 times. A deletion above an index already read cannot
    /// be seen this way: sysfs offers no generation counter, so the list is one consistent state only as far as
    /// these checks go.
    ///
    /// The path is split from the permission at its *last* `=` (the permission never holds one), and decoded:
    /// every `\` must start a three-digit octal escape. A missing or empty `xi_path` means no xino file.
    ///
    /// - Parameter si: The superblock id, the value of `si=` in the mount options: 1 to 16 lowercase
    ///   hexadecimal digits (`printf("%lx")`). Anything else is refused, since it becomes a path component.
    /// - Returns: The branches, top first, and the xino path. The branch list is empty when `br0` does not exist:
    ///   no such superblock, sysfs not mounted here, or a host with the module parameter `brs=0`, which shows
    ///   the branches in the mount options instead (see ``branches(inMountOptionsOf:)``).
    /// - Throws: ``UnionMountError/Code/malformedInput`` for a bad `si` or a file whose contents do not parse
    ///   (``UnionMountError/input`` names the file), ``UnionMountError/Code/busy`` when a file stayed `EBUSY`
    ///   through every retry or the list kept changing, ``UnionMountError/Code/systemCallFailed`` for any other
    ///   failed open(2) or read(2).
    public func branches(si: String) throws(UnionMountError) -> (branches: [Branch], xinoPath: FilePath?) {
        guard Self.isSuperblockID(si) else {
            throw UnionMountError.malformed(
                "aufs superblock id \(si.debugDescription) is not 1 to 16 lowercase hexadecimal digits",
                input: "si=" + si)
        }
        let directory = root.appending("si_" + si)
        var previous: Scan?
        for _ in 0..<Self.scanAttempts {
            let scan = try scanBranches(in: directory)
            guard let problem = scan.problem else {
                return (scan.branches, try xinoPath(in: directory))
            }
            // The same inconsistency twice in a row is not a race but what the files say.
            if let previous, previous == scan {
                throw UnionMountError.malformed(problem.message, input: problem.file.readable)
            }
            previous = scan
        }
        throw UnionMountError(
            code: .busy,
            message: "the branch list of aufs superblock si_\(si) changed during \(Self.scanAttempts) reads",
            input: directory.readable)
    }

    // MARK: Scanning

    /// One pass over `br<N>`/`brid<N>`: the branches read, and why the pass stopped early, if it did.
    struct Scan: Equatable {
        struct Problem: Equatable {
            var message: String
            var file: FilePath
        }

        var branches: [Branch] = []
        var problem: Problem?
    }

    func scanBranches(in directory: FilePath) throws(UnionMountError) -> Scan {
        var scan = Scan()
        var seen = Set<Int>()
        var index = 0
        while true {
            let idFile = directory.appending("brid\(index)")
            let branchFile = directory.appending("br\(index)")
            guard let before = try read(idFile) else { return scan }
            let idBefore = try Self.id(before, idFile)
            guard let line = try read(branchFile), let after = try read(idFile) else { return scan }
            let idAfter = try Self.id(after, idFile)
            guard idBefore == idAfter else {
                scan.problem = .init(message: "brid\(index) changed from \(idBefore) to \(idAfter)", file: idFile)
                return scan
            }
            guard seen.insert(idAfter).inserted else {
                scan.problem = .init(message: "branch id \(idAfter) appears twice", file: idFile)
                return scan
            }
            let parsed = try Self.sysfsBranch(line, file: branchFile)
            scan.branches.append(
                Branch(
                    index: index, path: parsed.path, permission: parsed.permission, attributes: parsed.attributes,
                    id: idAfter))
            index += 1
        }
    }

    func xinoPath(in directory: FilePath) throws(UnionMountError) -> FilePath? {
        let file = directory.appending("xi_path")
        guard var bytes = try read(file) else { return nil }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        guard !bytes.isEmpty else { return nil }
        guard !bytes.contains(UInt8(ascii: "\n")), let path = AufsBranchText.decodeSeqPath(bytes[...]) else {
            throw UnionMountError.malformed(
                "xi_path is not one escaped path: \(AufsBranchText.excerpt(bytes))", input: file.readable)
        }
        return FilePath(bytes: path)
    }

    /// A file's bytes; nil when it does not exist (`ENOENT` from open(2) or read(2)). `EBUSY` is retried.
    func read(_ file: FilePath) throws(UnionMountError) -> [UInt8]? {
        var retries = 0
        while true {
            switch reader(file) {
            case .success(let bytes):
                guard bytes.count <= Self.maximumFileSize else {
                    throw UnionMountError.malformed(
                        "larger than a sysfs attribute can be (\(Self.maximumFileSize) bytes)", input: file.readable)
                }
                return bytes
            case .failure(let failure) where failure.errno == .noSuchFileOrDirectory:
                return nil
            case .failure(let failure) where failure.errno == .resourceBusy && retries < busyRetries:
                retries += 1
                sleeper(busyRetryInterval)
            case .failure(let failure) where failure.errno == .resourceBusy:
                throw UnionMountError(
                    code: .busy,
                    message: "\(file.readable) stayed busy through \(retries + 1) reads "
                        + "(a remount or branch change holds the aufs superblock lock)",
                    input: file.readable, systemCall: failure.systemCall, errno: .resourceBusy)
            case .failure(let failure):
                throw UnionMountError.systemCall(
                    failure.systemCall, failure.errno, message: "cannot read \(file.readable)", input: file.readable)
            }
        }
    }

    // MARK: Parsing

    /// Whether `si` is what aufs prints for a superblock id: 1 to 16 of `0-9a-f`.
    static func isSuperblockID(_ si: String) -> Bool {
        let bytes = si.utf8
        guard (1...16).contains(bytes.count) else { return false }
        return bytes.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    /// `brid<N>`: a decimal number and a newline.
    static func id(_ bytes: [UInt8], _ file: FilePath) throws(UnionMountError) -> Int {
        var digits = bytes[...]
        if digits.last == UInt8(ascii: "\n") { digits = digits.dropLast() }
        let number = digits.withContiguousStorageIfAvailable { MountTableNumber.parseInt($0) } ?? nil
        guard let number else {
            throw UnionMountError.malformed(
                "a branch id must be a decimal number, not \(AufsBranchText.excerpt(bytes))", input: file.readable)
        }
        return number
    }

    /// `br<N>`: `<escaped path>=<perm>[+<attr>…]` and a newline.
    static func sysfsBranch(_ bytes: [UInt8], file: FilePath) throws(UnionMountError) -> AufsBranchText.Parsed {
        var line = bytes[...]
        if line.last == UInt8(ascii: "\n") { line = line.dropLast() }
        func malformed(_ reason: String) -> UnionMountError {
            .malformed("\(reason): \(AufsBranchText.excerpt(bytes))", input: file.readable)
        }
        guard !line.contains(UInt8(ascii: "\n")) else { throw malformed("more than one line") }
        guard let equals = line.lastIndex(of: UInt8(ascii: "=")) else {
            throw malformed("no `=<permission>` after the branch path")
        }
        guard let permission = AufsBranchText.permission(line[(equals + 1)...]) else {
            throw malformed("not a permission `rw`, `ro` or `rr` with `+<attribute>`s")
        }
        guard equals > line.startIndex, let path = AufsBranchText.decodeSeqPath(line[..<equals]) else {
            throw malformed("the branch path is empty or badly escaped")
        }
        return AufsBranchText.Parsed(path: FilePath(bytes: path), permission: permission.0, attributes: permission.1)
    }

    // MARK: Reading files

    /// Why reading a file failed: the call (`open` or `read`) and its errno.
    typealias FileReadError = FileSystem.ReadFailure

    /// Opens (non-blocking, so a FIFO planted in a fixture tree cannot hang) and reads a whole file, stopping
    /// after ``maximumFileSize`` + 1 bytes. `EINTR` is retried.
    static func readFile(_ path: FilePath) -> Result<[UInt8], FileReadError> {
        do {
            return .success(try FileSystem.readAll(path, options: [.nonBlocking], limit: maximumFileSize + 1))
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - brs=0: the branches in the mount options

extension AufsSysfs {
    /// The branches a `brs=0` host (or a kernel without sysfs) shows in the mount options of an aufs mount
    /// (field 11 of `/proc/self/mountinfo`, field 4 of `/proc/mounts`): the option `br:<path>=<perm>:…`, which
    /// aufs always prints last (`au_show_brs`), paths escaped like sysfs' (already decoded by ``MountEntry``).
    ///
    /// The list runs from `br:` to the end of the options field, taken whole from the raw field, so a comma in
    /// a branch path (a branch directory renamed after mounting) does not cut it. It is split on `:`; a piece
    /// that does not end in `=<perm>[+<attr>…]` is joined to the next with its `:`, so a colon in a path is kept
    /// too. Each branch is split at its last `=`.
    ///
    /// - Returns: The branches, top first, with no ids; empty when the options hold no `br:` (`br=`) option,
    ///   as on a host with sysfs branch files.
    /// - Throws: ``UnionMountError/Code/malformedInput`` when the list does not parse.
    public static func branches(inMountOptionsOf entry: MountEntry) throws(UnionMountError) -> [Branch] {
        // An aufs entry keeps its options field as printed (``MountEntryStorage/Field/rawSuperOptions``).
        var raw = entry.storage.withBytes(.rawSuperOptions) { Array($0) }
        if raw.isEmpty { raw = MountTableEscaping.encodeList(entry.superOptions.bytes) }
        guard let start = branchListStart(raw) else { return [] }
        let list = MountTableEscaping.decode(Array(raw[start...]))
        return try optionBranchList(list[...])
    }

    /// Where the value of the first `br:`/`br=` option starts in a raw options field.
    static func branchListStart(_ raw: [UInt8]) -> Int? {
        var optionStart = 0
        while optionStart + 3 <= raw.count {
            if raw[optionStart] == UInt8(ascii: "b"), raw[optionStart + 1] == UInt8(ascii: "r"),
                raw[optionStart + 2] == UInt8(ascii: ":") || raw[optionStart + 2] == UInt8(ascii: "=")
            {
                return optionStart + 3
            }
            guard let comma = raw[optionStart...].firstIndex(of: UInt8(ascii: ",")) else { return nil }
            optionStart = comma + 1
        }
        return nil
    }

    /// A decoded `br:` value: `<path>=<perm>[+<attr>…]` elements joined by `:`.
    static func optionBranchList(_ list: ArraySlice<UInt8>) throws(UnionMountError) -> [Branch] {
        guard !list.contains(0) else {
            throw UnionMountError.malformed(
                "the aufs branch list holds a NUL byte", input: "br:" + Array(list).readable)
        }
        var branches: [Branch] = []
        var pending: ArraySlice<UInt8>?
        for piece in list.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
            let element = pending.map { list[$0.startIndex..<piece.endIndex] } ?? piece
            // A permission never holds `:`, so only the current piece can complete a pending element: look for
            // the `=` in the piece alone, which keeps a long list of `:`-joined pieces linear.
            guard let equals = piece.lastIndex(of: UInt8(ascii: "=")), equals > element.startIndex,
                let permission = AufsBranchText.permission(piece[(equals + 1)...])
            else {
                pending = element
                continue
            }
            pending = nil
            branches.append(
                Branch(
                    index: branches.count, path: FilePath(bytes: element[..<equals]), permission: permission.0,
                    attributes: permission.1, id: nil))
        }
        if let pending {
            throw UnionMountError.malformed(
                "the aufs branch list ends in \(AufsBranchText.excerpt(Array(pending))), "
                    + "which is not `<path>=<permission>`",
                input: "br:" + Array(list).readable)
        }
        return branches
    }
}

// MARK: - Shared text rules

/// The `<path>=<perm>[+<attr>…]` text aufs prints in `br<N>` and in a `br:` option (`au_optstr_br_perm`).
enum AufsBranchText {
    struct Parsed {
        var path: FilePath
        var permission: AufsBranch.Permission
        var attributes: [String]
    }

    /// `rw`, `ro` or `rr`, then `+`-separated attribute names of `a-z`, `0-9` and `_`; nil otherwise.
    static func permission(_ text: ArraySlice<UInt8>) -> (AufsBranch.Permission, [String])? {
        let parts = text.split(separator: UInt8(ascii: "+"), omittingEmptySubsequences: false)
        guard let first = parts.first,
            let permission = AufsBranch.Permission(rawValue: String(decoding: first, as: UTF8.self))
        else { return nil }
        var attributes: [String] = []
        for part in parts.dropFirst() {
            guard !part.isEmpty, part.allSatisfy(isAttributeByte) else { return nil }
            attributes.append(String(decoding: part, as: UTF8.self))
        }
        return (permission, attributes)
    }

    static func isAttributeByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }

    /// Decodes a path printed by `seq_path`: every `\` must start `\ooo` with a value of at most 0377; the
    /// result must be non-empty and free of NUL bytes. nil otherwise.
    static func decodeSeqPath(_ escaped: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(escaped.count)
        var index = escaped.startIndex
        while index < escaped.endIndex {
            let byte = escaped[index]
            guard byte != 0 else { return nil }
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 3 < escaped.endIndex else { return nil }
            let digits = escaped[(index + 1)...(index + 3)].map { $0 &- UInt8(ascii: "0") }
            guard digits[0] < 4, digits[1] < 8, digits[2] < 8 else { return nil }
            let decoded = digits[0] << 6 | digits[1] << 3 | digits[2]
            guard decoded != 0 else { return nil }
            out.append(decoded)
            index += 4
        }
        return out.isEmpty ? nil : out
    }

    /// At most 80 bytes of a file's contents, readable and quoted, for messages.
    static func excerpt(_ bytes: [UInt8]) -> String {
        (Array(bytes.prefix(80)).readable + (bytes.count > 80 ? "…" : "")).debugDescription
    }
}
