using System.Reflection;
using Microsoft.CodeAnalysis;
using RetinaSharp.Modeling;

namespace RetinaSharp.Tests.Foundation;

/// <summary>
/// Keeps issue 17 from coming back: no code in src/ (nor the GC-stress harness) leaves a TorchSharp Scalar to the
/// finaliser (see <see cref="ScalarLifetimeCheck"/>), and no module of the detector runs a TorchSharp forward that does.
/// </summary>
public class ScalarLifetimeTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "RetinaSharp.sln"))) return d.FullName;
        throw new InvalidOperationException($"RetinaSharp.sln not found above {AppContext.BaseDirectory}");
    }

    private static string Report(IReadOnlyList<ScalarFinding> findings) =>
        $"{findings.Count} place{(findings.Count == 1 ? "" : "s")} where a Scalar can be finalised while libtorch reads it:\n" + string.Join('\n', findings);

    [Fact]
    public void Library_cli_and_harness_keep_every_scalar_alive()
    {
        string root = RepoRoot();
        var library = ScalarLifetimeCheck.CompileFolder(Path.Combine(root, "src", "RetinaSharp"), "RetinaSharp", OutputKind.DynamicallyLinkedLibrary);
        var cli = ScalarLifetimeCheck.CompileFolder(Path.Combine(root, "src", "RetinaSharp.Cli"), "retina", OutputKind.ConsoleApplication, library.ToMetadataReference());
        var harness = ScalarLifetimeCheck.CompileFolder(Path.Combine(root, "tests", "RetinaSharp.GcStress"), "RetinaSharp.GcStress", OutputKind.ConsoleApplication,
            library.ToMetadataReference(), cli.ToMetadataReference());
        var findings = new List<ScalarFinding>();
        foreach (var compilation in new Compilation[] { library, cli, harness })
        {
            var (errors, found) = ScalarLifetimeCheck.Analyze(compilation, root);
            Assert.True(errors.Count == 0, $"{compilation.AssemblyName} does not compile for the check:\n{string.Join('\n', errors.Take(20))}");
            findings.AddRange(found);
        }
        Assert.True(findings.Count == 0, Report(findings));
    }

    private static IReadOnlyList<ScalarFinding> CheckSnippet(string body)
    {
        string code = $$"""
            using TorchSharp;
            using static TorchSharp.torch;
            public static class Snippet
            {
                private static readonly Scalar Cached = 0.25.ToScalar();
                public static Tensor Run(Tensor t, Tensor g)
                {
            {{body}}
                    return t;
                }
            }
            """;
        var (errors, findings) = ScalarLifetimeCheck.Analyze(ScalarLifetimeCheck.Compile("Snippet", [("Snippet.cs", code)]));
        Assert.True(errors.Count == 0, string.Join('\n', errors));
        return findings;
    }

    [Fact]
    public void Checker_flags_an_implicit_alpha_with_file_and_line()
    {
        var findings = CheckSnippet("        t.add_(g, alpha: 0.5);");
        var f = Assert.Single(findings);
        Assert.Equal(("Snippet.cs", 8, "0.5"), (f.File, f.Line, f.Code));
        Assert.StartsWith("implicit conversion of double to TorchSharp.Scalar", f.Reason);
    }

    [Fact]
    public void Checker_flags_torchsharp_members_that_create_scalars_internally()
    {
        // a + b and add(b) pass alpha = 1 as an implicit Scalar inside TorchSharp; t * 2.0 converts 2.0 inside the operator.
        var findings = CheckSnippet("""
                    var s = t + g;
                    var u = t.add(g);
                    var v = t * 2.0;
                    float f = t.sum().ToSingle();
            """);
        Assert.Equal([8, 9, 10, 11], findings.Select(f => f.Line));
        Assert.Contains("Tensor.op_Addition", findings[0].Reason);
        Assert.Contains("Tensor.add(Tensor), which creates 1 Scalar it does not dispose", findings[0].Reason);
        Assert.Contains("Tensor.add creates 1 Scalar it does not dispose", findings[1].Reason);
        Assert.Contains("Tensor.op_Multiply", findings[2].Reason);
        Assert.Contains("ToSingle", findings[3].Reason);
    }

    [Fact]
    public void Checker_flags_a_to_scalar_that_nothing_keeps_alive()
    {
        var findings = CheckSnippet("""
                    var s = 0.5.ToScalar();
                    t.add_(g, 0.5.ToScalar());
            """);
        Assert.Equal([8, 9], findings.Select(f => f.Line));
        Assert.All(findings, f => Assert.StartsWith("ToScalar() whose result is not kept alive", f.Reason));
    }

    [Fact]
    public void Checker_accepts_scalars_that_are_kept_alive()
    {
        var findings = CheckSnippet("""
                    using var half = 0.5.ToScalar();
                    using var one = 1.ToScalar();
                    t.add_(g, alpha: half).mul_(Cached).add_(g, one);
                    using (var two = 2.ToScalar()) t.mul_(two);
                    var w = t.mul(g).sub(g).div(g).item<float>();
            """);
        Assert.Empty(findings);
    }
}

/// <summary>
/// No module of the detector runs a TorchSharp forward that leaves a Scalar to the finaliser (issue 17). In the generator
/// collection: building models draws their initial weights from torch's global generator.
/// </summary>
[Collection(RetinaSharp.Tests.Training.TorchRngCollection.Name)]
public class DetectorModuleScalarTests
{
    [Fact]
    public void Detector_modules_run_no_torchsharp_forward_that_creates_scalars()
    {
        // TorchSharp's BatchNorm.forward bumps num_batches_tracked with add_(1); LeakyReLU, Hardtanh, Threshold, ELU, ...
        // convert their doubles to Scalars on each call. The detector's modules (every configuration the demo and the
        // paper use) must avoid them.
        var creators = ScalarLifetimeCheck.TorchSharpCreators;
        var options = new[]
        {
            new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet18, FpnChannels = 32, HeadGroupNorm = true, BackboneNorm = BackboneNormKind.BatchNorm, TrainableBackboneLayers = 5 },
            new RetinaNetOptions(3) { Backbone = ResNetDepth.ResNet50, FpnChannels = 32, P6FromC5 = true },
        };
        var bad = new List<string>();
        foreach (var o in options)
        {
            using var model = new RetinaNet(o);
            foreach (var (name, module) in model.named_modules())
            {
                var forward = module.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance)
                    .Where(m => m.Name == "forward").Select(m => m.GetBaseDefinition() == m ? m : m).ToList();
                foreach (var f in forward)
                    if (f.DeclaringType!.Assembly == typeof(TorchSharp.Scalar).Assembly && creators.Reason(f.MetadataToken) is string why)
                        bad.Add($"{o.Backbone} {name} ({module.GetType().Name}): {f.DeclaringType.Name}.forward {why}");
            }
        }
        Assert.True(bad.Count == 0, string.Join('\n', bad.Distinct()));
    }
}
