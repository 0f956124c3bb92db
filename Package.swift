// swift-tools-version:6.0
import PackageDescription

// No Swift packages: the C libraries come in as system library targets.
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
        .target(
            name: "ChatFCGI",
            dependencies: ["CFastCGI", "CLibPQ", "CCrypto"],
            path: "Sources/ChatFCGI"
        ),
        .executableTarget(name: "chat-fcgi", dependencies: ["ChatFCGI"], path: "Sources/chat-fcgi"),
        .testTarget(name: "ChatFCGITests", dependencies: ["ChatFCGI"], path: "Tests/ChatFCGITests"),
        .testTarget(name: "IntegrationTests", dependencies: [], path: "Tests/IntegrationTests"),
    ],
    swiftLanguageModes: [.v5]
)
