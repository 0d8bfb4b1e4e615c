// Installs RetinaSharp the way a .NET user does: `dotnet pack` into a folder feed, then (a) a fresh console project with a
// PackageReference to the library builds and detects objects in a committed image, (b) `dotnet tool install --tool-path`
// installs the `retina` command, whose --help and detect run. One pack serves both. No network is needed when the machine's
// NuGet cache holds TorchSharp and the other dependencies (a clean clone that ran the README's test command has them).
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;
using RetinaSharp.Data;
using RetinaSharp.Inference;
using RetinaSharp.Modeling;
using RetinaSharp.Tests.Training;
using static TorchSharp.torch;

namespace RetinaSharp.Tests.Packaging;

[Collection(TorchRngCollection.Name)]
public class PackageInstallTests
{
    private static readonly (long Id, string Name)[] Classes = [(3, "shirt"), (7, "sneaker"), (90, "bag")];

    [Fact]
    public void Packed_library_and_tool_install_from_a_folder_feed_and_detect()
    {
        string repo = RepositoryRoot();
        string image = Path.Combine(AppContext.BaseDirectory, "Fixtures", "images", "fashion_scene.png");
        string root = Path.Combine(Path.GetTempPath(), "retinasharp-pack-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            string feed = Path.Combine(root, "feed");
            string configuration = typeof(PackageInstallTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
            // The tool's pack builds the library too; the library's pack then reuses that build.
            Run(repo, "dotnet", "pack", "src/RetinaSharp.Cli", "-c", configuration, "-o", feed, "--disable-build-servers", "-nodeReuse:false");
            Run(repo, "dotnet", "pack", "src/RetinaSharp", "-c", configuration, "-o", feed, "--no-build", "--disable-build-servers", "-nodeReuse:false");

            string version = XDocument.Load(Path.Combine(repo, "Directory.Build.props")).Descendants("VersionPrefix").Single().Value;
            CheckLibraryPackage(Path.Combine(feed, $"RetinaSharp.{version}.nupkg"), version);
            CheckToolPackage(Path.Combine(feed, $"RetinaSharp.Cli.{version}.nupkg"), version);

            // The expected detections, in this process, from a tiny model that detects something untrained (prior 0.5).
            string model = Path.Combine(root, "model.rsnet");
            SaveTinyModel(model);
            List<CocoResult> expected;
            using (var detector = Detector.Load(model))
                expected = detector.Detect(image).ToCocoResults().ToList();
            Assert.NotEmpty(expected);

            WriteNuGetConfig(root, feed);

            // (a) A fresh console project: PackageReference only, no runtime identifier, no Import.
            string app = Path.Combine(root, "app");
            Directory.CreateDirectory(app);
            File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="RetinaSharp" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using RetinaSharp.Inference;
                using RetinaSharp.Modeling;
                using RetinaSharp.Recipes;

                // The ImageNet backbone from the package's content files (beside this program).
                var recipe = TrainingRecipe.Demo();
                using (var fresh = new RetinaNet(recipe.ModelOptions(3)))
                    Console.WriteLine(recipe.BackboneWeights.LoadInto(fresh));
                using var detector = Detector.Load(args[0]);
                var found = detector.Detect(args[1]);
                foreach (var o in found.Take(3)) Console.WriteLine($"{o.ClassName} (id {o.ClassId}) {o.Score:0.000} {o.Box}");
                found.WriteCocoJson(args[2]);
                found.Draw(args[3], minScore: 0.4);
                Console.WriteLine($"{found.Count} objects");
                """);
            Run(app, "dotnet", "build", "-c", "Release", "--disable-build-servers", "-nodeReuse:false");
            // The package came from the feed, not from some cache.
            string restored = Path.Combine(root, "packages", "retinasharp", version, $"retinasharp.{version}.nupkg.sha512");
            Assert.Equal(Sha512(Path.Combine(feed, $"RetinaSharp.{version}.nupkg")), File.ReadAllText(restored));
            string json = Path.Combine(root, "app-detections.json"), drawn = Path.Combine(root, "app-drawn.png");
            string output = Run(app, "dotnet", Path.Combine(app, "bin", "Release", "net10.0", "app.dll"), model, image, json, drawn);
            Assert.Contains($"{expected.Count} objects", output);
            Assert.Contains("from ImageNet weights from Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1", output);
            Assert.True(File.Exists(Path.Combine(app, "bin", "Release", "net10.0", "DnnImageModels", "ML.NET", "LICENSE")));
            Assert.Matches(@"(shirt|sneaker|bag) \(id (3|7|90)\) 0\.\d{3} \(", output);
            AssertSameResults(expected, CocoJson.ReadResults(json));
            Assert.Equal((96, 96), ImageIO.ReadSize(drawn));

            // (b) The tool: installed from the same feed, run from its tool path.
            string tools = Path.Combine(root, "tools");
            Run(root, "dotnet", "tool", "install", "RetinaSharp.Cli", "--tool-path", tools, "--add-source", feed, "--version", version);
            string retina = Path.Combine(tools, "retina");
            Assert.Single(Directory.EnumerateFiles(tools, "ResNet18.onnx", SearchOption.AllDirectories)); // --backbone-weights imagenet
            string help = Run(root, retina, "--help");
            Assert.Contains("detect", help);
            Assert.Contains("train", help);
            string outDir = Path.Combine(root, "detect-out");
            Run(root, retina, "detect", "--weights", model, image, "--out", outDir);
            AssertSameResults(expected, CocoJson.ReadResults(Path.Combine(outDir, "detections.json")));
            Assert.True(File.Exists(Path.Combine(outDir, "fashion_scene.detections.png")));
        }
        finally
        {
            // The consumer's output and the tool each hold a copy of libtorch (about 500 MB).
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static void CheckLibraryPackage(string nupkg, string version)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        foreach (var f in new[] { "lib/net10.0/RetinaSharp.dll", "lib/net10.0/RetinaSharp.xml", "README.md", "buildTransitive/RetinaSharp.targets",
                     "buildTransitive/PatchLibTorchSharp.targets", "buildTransitive/PatchGlibcxxWeakVersion.cs",
                     // ML.NET's ImageNet ResNet-18 and its licence, copied to the output of every project that references the package.
                     "contentFiles/any/any/DnnImageModels/ResNet18Onnx/ResNet18.onnx", "contentFiles/any/any/DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx",
                     "contentFiles/any/any/DnnImageModels/ML.NET/LICENSE", "contentFiles/any/any/DnnImageModels/ML.NET/THIRD-PARTY-NOTICES.TXT" })
            Assert.Contains(f, names);
        var meta = Nuspec(zip);
        XNamespace ns = meta.Name.Namespace;
        Assert.Equal("RetinaSharp", meta.Element(ns + "id")!.Value);
        Assert.Equal(version, meta.Element(ns + "version")!.Value);
        Assert.Equal("MIT", meta.Element(ns + "license")!.Value);
        Assert.Equal("expression", meta.Element(ns + "license")!.Attribute("type")!.Value);
        Assert.Equal("README.md", meta.Element(ns + "readme")!.Value);
        Assert.StartsWith("https://", meta.Element(ns + "repository")!.Attribute("url")!.Value);
        var deps = meta.Descendants(ns + "dependency").Select(d => d.Attribute("id")!.Value).ToList();
        Assert.Contains("TorchSharp", deps);
        Assert.Contains("libtorch-cpu-linux-x64", deps);
    }

    private static void CheckToolPackage(string nupkg, string version)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var meta = Nuspec(zip);
        XNamespace ns = meta.Name.Namespace;
        Assert.Equal("RetinaSharp.Cli", meta.Element(ns + "id")!.Value);
        Assert.Equal(version, meta.Element(ns + "version")!.Value);
        Assert.Equal("DotnetTool", meta.Descendants(ns + "packageType").Single().Attribute("name")!.Value);
        var settings = zip.Entries.Single(e => e.FullName.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal));
        using var s = settings.Open();
        Assert.Equal("retina", XDocument.Load(s).Descendants("Command").Single().Attribute("Name")!.Value);
    }

    private static XElement Nuspec(ZipArchive zip)
    {
        using var s = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var doc = XDocument.Load(s);
        return doc.Root!.Element(doc.Root.Name.Namespace + "metadata")!;
    }

    private static void AssertSameResults(IReadOnlyList<CocoResult> expected, IReadOnlyList<CocoResult> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].CategoryId, actual[i].CategoryId);
            Assert.Equal(expected[i].X, actual[i].X, 0.002);
            Assert.Equal(expected[i].Y, actual[i].Y, 0.002);
            Assert.Equal(expected[i].Width, actual[i].Width, 0.002);
            Assert.Equal(expected[i].Height, actual[i].Height, 0.002);
            Assert.Equal(expected[i].Score, actual[i].Score, 1e-4);
        }
    }

    private static void SaveTinyModel(string path)
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        using var model = new RetinaNet(new RetinaNetOptions(Classes.Length)
        {
            Backbone = ResNetDepth.ResNet18, MinSize = 64, MaxSize = 64, FpnChannels = 16, PriorProbability = 0.5, DetectionsPerImage = 20,
            AnchorSizes = [[16], [32], [64], [128], [256]], AspectRatios = [1.0],
        });
        RetinaNetCheckpoint.Save(model, path, Classes.Select(c => new CocoCategory(c.Id, c.Name)).ToList());
    }

    /// <summary>
    /// The consumer's NuGet.config: the folder feed added to the machine's sources (nuget.org), packages restored into a
    /// folder of the test, and the machine's package cache as a fallback folder (so TorchSharp and libtorch are not
    /// downloaded or copied again) without any RetinaSharp package an earlier install may have left there.
    /// </summary>
    private static void WriteNuGetConfig(string root, string feed)
    {
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string fallback = Path.Combine(root, "fallback");
        Directory.CreateDirectory(fallback);
        if (Directory.Exists(cache))
            foreach (var dir in Directory.EnumerateDirectories(cache))
                if (!Path.GetFileName(dir).StartsWith("retinasharp", StringComparison.OrdinalIgnoreCase))
                    Directory.CreateSymbolicLink(Path.Combine(fallback, Path.GetFileName(dir)), dir);
        File.WriteAllText(Path.Combine(root, "NuGet.Config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" /></config>
              <fallbackPackageFolders><add key="machine-cache" value="{fallback}" /></fallbackPackageFolders>
              <packageSources><add key="retinasharp-test-feed" value="{feed}" /></packageSources>
            </configuration>
            """);
    }

    private static string Sha512(string file)
    {
        using var s = File.OpenRead(file);
        return Convert.ToBase64String(System.Security.Cryptography.SHA512.HashData(s));
    }

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "RetinaSharp.sln"))) return d.FullName;
        throw new InvalidOperationException($"no RetinaSharp.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>Runs a program to its end (at most 10 minutes); a non-zero exit fails the test with the program's output.</summary>
    private static string Run(string workingDirectory, string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The test host's MSBuild variables (set by `dotnet test`) would point the child build at the wrong SDK parts.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', args)} did not finish in 10 minutes");
        }
        string all = stdout + stderr.Result;
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} exited {process.ExitCode} in {workingDirectory}:\n{Tail(all)}");
        return all;
    }

    private static string Tail(string s) => s.Length <= 6000 ? s : "..." + s[^6000..];
}
