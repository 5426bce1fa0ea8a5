# Thin wrapper over CMake. `make demo` and `make test` are the two commands users run.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2

.PHONY: all deps build test test-sanitize demo demo-bbh bench clean
all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same suite built with AddressSanitizer and UBSan (CI runs both).
test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DILORA_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS)

demo: build
	@sh scripts/demo.sh $(BUILD)/ilora world

demo-bbh: build
	@sh scripts/demo.sh $(BUILD)/ilora bbh

bench: build
	@$(BUILD)/ilora bench model

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
