// swift-tools-version:6.0
import PackageDescription

// No Swift packages: the C libraries come in as system library targets. Each layer is a target,
// so that the compiler keeps the one-way flow (docs/architecture.md, "Layers"):
// C shims → ChatSecurity → ChatConfig → ChatPostgres, ChatHTTP, ChatFastCGI → ChatCache, ChatRouting
// → features → ChatServer, ChatApp → chat-fcgi.
let shared: [Target.Dependency] = ["ChatConfig", "ChatHTTP", "ChatPostgres", "ChatRouting", "ChatCache", "ChatSecurity"]

let package = Package(
    name: "ChatFCGI",
    products: [
        .executable(name: "chat-fcgi", targets: ["chat-fcgi"]),
    ],
    targets: [
        .systemLibrary(name: "CFastCGI", path: "Sources/CFastCGI", pkgConfig: "fcgi",
                       providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        // libcrypt (yescrypt password hashing) and libcrypto (SHA-256, HMAC, secure random).
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto",
                       providers: [.apt(["libcrypt-dev", "libssl-dev"])]),

        // Shared layers: they know nothing of any feature.
        .target(name: "ChatSecurity", dependencies: ["CCrypto"]),
        .target(name: "ChatConfig", dependencies: ["ChatSecurity"]),
        .target(name: "ChatPostgres", dependencies: ["CLibPQ", "ChatConfig", "ChatSecurity"]),
        .target(name: "ChatHTTP", dependencies: ["ChatConfig"]),
        .target(name: "ChatFastCGI", dependencies: ["CFastCGI", "ChatConfig"]),
        .target(name: "ChatCache", dependencies: ["ChatConfig", "ChatPostgres"]),
        .target(name: "ChatRouting", dependencies: ["ChatConfig", "ChatHTTP", "ChatPostgres"]),

        // Features: each one folder; a feature depends only on those below it.
        .target(name: "Events", dependencies: shared, path: "Sources/Features/Events"),
        .target(name: "Uploads", dependencies: shared, path: "Sources/Features/Uploads"),
        .target(name: "Accounts", dependencies: shared + ["Uploads"], path: "Sources/Features/Accounts"),
        .target(name: "Social", dependencies: shared + ["Accounts", "Events"], path: "Sources/Features/Social"),
        .target(name: "Groups", dependencies: shared + ["Accounts", "Social", "Events"], path: "Sources/Features/Groups"),
        .target(name: "Messages", dependencies: shared + ["Accounts", "Groups", "Events"], path: "Sources/Features/Messages"),
        .target(name: "Moments", dependencies: shared + ["Accounts", "Social", "Events", "Uploads"], path: "Sources/Features/Moments"),

        // The process model (supervisor, workers, FastCGI adapter) and the wiring of it all.
        .target(name: "ChatServer", dependencies: ["ChatConfig", "ChatSecurity", "ChatFastCGI", "ChatHTTP", "ChatRouting", "ChatPostgres", "ChatCache"]),
        .target(name: "ChatApp", dependencies: shared + ["ChatServer", "Events", "Uploads", "Accounts", "Social", "Groups", "Messages", "Moments"]),
        .executableTarget(name: "chat-fcgi", dependencies: ["ChatApp"], path: "Sources/chat-fcgi"),

        .testTarget(name: "UnitTests",
                    dependencies: shared + ["ChatFastCGI", "ChatServer", "ChatApp", "Events", "Uploads", "Accounts",
                                            "Social", "Groups", "Messages", "Moments"],
                    path: "Tests/UnitTests"),
        .testTarget(name: "IntegrationTests", dependencies: [], path: "Tests/IntegrationTests"),
    ],
    swiftLanguageModes: [.v5]
)
