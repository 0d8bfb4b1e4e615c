// A minimal Chrome DevTools Protocol client for browser tests: starts Debian's headless Chromium with a fresh profile
// and --remote-debugging-port=0, connects to its page over a WebSocket (System.Net.WebSockets), sends commands
// (Page.navigate, Runtime.evaluate, Input.dispatchKeyEvent, Page.captureScreenshot) and records console errors,
// uncaught exceptions, error log entries and every network request the page makes.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RetinaSharp.Tests.Reporting;

internal sealed class HeadlessChromium : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;
    private int _nextId;

    /// <summary>Console errors, uncaught exceptions and error log entries of the page, in order.</summary>
    public ConcurrentQueue<string> Errors { get; } = new();

    /// <summary>URL of every request the page made.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    /// <summary>The Chromium executable: $RETINA_CHROMIUM, else chromium / chromium-browser / google-chrome on the PATH.</summary>
    public static string? FindExecutable()
    {
        if (Environment.GetEnvironmentVariable("RETINA_CHROMIUM") is { Length: > 0 } env && File.Exists(env)) return env;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin");
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
            foreach (var dir in dirs)
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    private HeadlessChromium(Process process, string profile, Uri pageSocket)
    {
        _process = process;
        _profile = profile;
        _socket.Options.KeepAliveInterval = TimeSpan.Zero;
        _socket.ConnectAsync(pageSocket, CancellationToken.None).Wait(CommandTimeout);
        _reader = Task.Run(ReadLoop);
    }

    /// <summary>Starts headless Chromium on a blank page and enables the Page, Runtime, Log and Network domains.</summary>
    /// <exception cref="InvalidOperationException">Chromium is not installed, exits, or does not open its debugging port.</exception>
    public static HeadlessChromium Start(int width = 1400, int height = 1000)
    {
        string exe = FindExecutable() ?? throw new InvalidOperationException(
            "Chromium is not installed: the browser test needs Debian's chromium (apt-get install chromium chromium-driver; .ci/run installs it), " +
            "or set RETINA_CHROMIUM to a Chromium/Chrome executable.");
        string profile = Path.Combine(Path.GetTempPath(), "retina-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                     $"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-allow-origins=*", $"--window-size={width},{height}", "about:blank" })
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            // Chromium writes the port it chose to <profile>/DevToolsActivePort.
            string portFile = Path.Combine(profile, "DevToolsActivePort");
            var waited = Stopwatch.StartNew();
            int port = 0;
            while (port == 0)
            {
                if (process.HasExited)
                    throw new InvalidOperationException($"{exe} exited with code {process.ExitCode} before opening its debugging port:\n{stderr}");
                if (waited.Elapsed > CommandTimeout)
                    throw new InvalidOperationException($"{exe} did not open its debugging port within {CommandTimeout.TotalSeconds} s:\n{stderr}");
                if (File.Exists(portFile) && File.ReadAllLines(portFile) is [var first, ..] && int.TryParse(first, out int p)) port = p;
                else Thread.Sleep(50);
            }
            using var http = new HttpClient { Timeout = CommandTimeout };
            Uri? page = null;
            while (page is null)
            {
                var targets = JsonNode.Parse(http.GetStringAsync($"http://127.0.0.1:{port}/json/list").Result)!.AsArray();
                var target = targets.FirstOrDefault(t => (string?)t!["type"] == "page");
                if (target != null) page = new Uri((string)target["webSocketDebuggerUrl"]!);
                else if (waited.Elapsed > CommandTimeout) throw new InvalidOperationException($"{exe} opened no page:\n{stderr}");
                else Thread.Sleep(50);
            }
            var browser = new HeadlessChromium(process, profile, page);
            foreach (var domain in new[] { "Page", "Runtime", "Log", "Network" }) browser.Send(domain + ".enable");
            return browser;
        }
        catch
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.Dispose();
            throw;
        }
    }

    /// <summary>Sends a command and waits for its result.</summary>
    /// <exception cref="InvalidOperationException">The browser answered with an error.</exception>
    /// <exception cref="TimeoutException">No answer within a minute.</exception>
    public JsonElement Send(string method, object? parameters = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var done = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = done;
        byte[] message = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        lock (_socket) _socket.SendAsync(message, WebSocketMessageType.Text, true, CancellationToken.None).Wait(CommandTimeout);
        if (!done.Task.Wait(CommandTimeout)) throw new TimeoutException($"{method}: no answer from Chromium within {CommandTimeout.TotalSeconds} s");
        return done.Task.Result;
    }

    /// <summary>Evaluates a JavaScript expression in the page (promises awaited) and returns its value.</summary>
    /// <exception cref="InvalidOperationException">The expression threw.</exception>
    public JsonElement Evaluate(string expression)
    {
        var r = Send("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (r.TryGetProperty("exceptionDetails", out var ex))
            throw new InvalidOperationException($"JavaScript error in `{expression}`: {ex}");
        var result = r.GetProperty("result");
        return result.TryGetProperty("value", out var v) ? v.Clone() : default;
    }

    /// <summary>Opens <paramref name="url"/> and waits until <paramref name="readyExpression"/> is true.</summary>
    public void Navigate(string url, string readyExpression)
    {
        Send("Page.navigate", new { url });
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var ready = Evaluate($"document.readyState === 'complete' && !!({readyExpression})");
            if (ready.ValueKind == JsonValueKind.True) return;
            if (waited.Elapsed > CommandTimeout)
                throw new TimeoutException($"{url} was not ready within {CommandTimeout.TotalSeconds} s; errors: {string.Join(" | ", Errors)}");
            Thread.Sleep(50);
        }
    }

    /// <summary>Presses a key (as a user would) with the focus where it is: "ArrowRight", "End", ...</summary>
    public void Press(string key, int windowsKeyCode)
    {
        Send("Input.dispatchKeyEvent", new { type = "keyDown", key, code = key, windowsVirtualKeyCode = windowsKeyCode, nativeVirtualKeyCode = windowsKeyCode });
        Send("Input.dispatchKeyEvent", new { type = "keyUp", key, code = key, windowsVirtualKeyCode = windowsKeyCode, nativeVirtualKeyCode = windowsKeyCode });
    }

    /// <summary>A PNG of the viewport.</summary>
    public byte[] Screenshot() => Convert.FromBase64String(Send("Page.captureScreenshot", new { format = "png" }).GetProperty("data").GetString()!);

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open && !_stop.IsCancellationRequested)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                using (var doc = JsonDocument.Parse(message.ToArray())) Dispatch(doc.RootElement);
                message.SetLength(0);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
        foreach (var p in _pending.Values) p.TrySetException(new InvalidOperationException("the connection to Chromium closed"));
    }

    private void Dispatch(JsonElement m)
    {
        if (m.TryGetProperty("id", out var idElement))
        {
            if (!_pending.TryRemove(idElement.GetInt32(), out var done)) return;
            if (m.TryGetProperty("error", out var error)) done.TrySetException(new InvalidOperationException($"Chromium: {error}"));
            else done.TrySetResult(m.GetProperty("result").Clone());
            return;
        }
        string method = m.GetProperty("method").GetString()!;
        var p = m.GetProperty("params");
        switch (method)
        {
            case "Runtime.consoleAPICalled" when p.GetProperty("type").GetString() is "error" or "assert":
                Errors.Enqueue("console." + p.GetProperty("type").GetString() + ": " + string.Join(" ", p.GetProperty("args").EnumerateArray().Select(a =>
                    a.TryGetProperty("value", out var v) ? v.ToString() : a.TryGetProperty("description", out var d) ? d.GetString() : a.ToString())));
                break;
            case "Runtime.exceptionThrown":
                var ex = p.GetProperty("exceptionDetails");
                Errors.Enqueue("uncaught: " + (ex.TryGetProperty("exception", out var e) && e.TryGetProperty("description", out var desc) ? desc.GetString() : ex.GetProperty("text").GetString()));
                break;
            case "Log.entryAdded" when p.GetProperty("entry").GetProperty("level").GetString() == "error":
                Errors.Enqueue("log: " + p.GetProperty("entry").GetProperty("text").GetString() + " " +
                    (p.GetProperty("entry").TryGetProperty("url", out var url) ? url.GetString() : ""));
                break;
            case "Network.requestWillBeSent":
                Requests.Enqueue(p.GetProperty("request").GetProperty("url").GetString()!);
                break;
        }
    }

    public void Dispose()
    {
        try { Send("Browser.close"); } catch (Exception e) when (e is InvalidOperationException or TimeoutException or AggregateException or WebSocketException) { }
        _stop.Cancel();
        try { _reader.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        if (!_process.WaitForExit(5000))
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.Dispose();
        _socket.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
