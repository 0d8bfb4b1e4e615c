// The check behind ScalarLifetimeTests (issue 17): compiles C# sources with Roslyn against the real references and
// reports every place where a TorchSharp Scalar can be finalised while libtorch reads it:
//  1. a user-defined conversion to TorchSharp.Scalar (`t.add_(g, alpha: 0.5)`, `t.mul_(2.0)`, `(Scalar)x`): the
//     Scalar it creates is unreachable as soon as its handle is passed to native code;
//  2. a call of a TorchSharp member that creates such a Scalar itself (TorchSharpScalarCreators: `a + b` and
//     `a.add(b)` pass alpha = 1, `t * 2.0`, `square()`, `ToSingle()`, ...);
//  3. an explicit `x.ToScalar()` whose result is not kept alive: only a `using` local, a field or property
//     (a cached constant owned by an object), or a returned value keeps it.
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace RetinaSharp.Tests.Foundation;

/// <summary>One finding: where, the code, and why it is unsafe.</summary>
internal sealed record ScalarFinding(string File, int Line, string Code, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Reason}: {Code}";
}

/// <summary>Roslyn-based check for Scalars left to the finaliser (see the file header).</summary>
internal static class ScalarLifetimeCheck
{
    /// <summary>The global usings of SDK projects with ImplicitUsings (Microsoft.NET.Sdk).</summary>
    private const string ImplicitUsings = "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; " +
        "global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;";

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) && IsManaged(p))
            .Where(p => !Path.GetFileName(p).StartsWith("RetinaSharp", StringComparison.Ordinal) && Path.GetFileName(p) != "retina.dll")
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))]);

    private static readonly Lazy<TorchSharpScalarCreators> Creators = new(() => TorchSharpScalarCreators.Scan(TorchSharpScalarCreators.TorchSharpPath));

    /// <summary>The TorchSharp members that create Scalars internally (scanned once per test run).</summary>
    public static TorchSharpScalarCreators TorchSharpCreators => Creators.Value;

    /// <summary>
    /// Compiles <paramref name="sources"/> (path, text) as one assembly with the SDK's implicit usings, nullable context
    /// and unsafe code allowed, against this test run's assemblies (TorchSharp, SkiaSharp, ... and the framework) and
    /// <paramref name="extra"/>.
    /// </summary>
    public static CSharpCompilation Compile(string assemblyName, IEnumerable<(string Path, string Text)> sources, params MetadataReference[] extra) =>
        Compile(assemblyName, OutputKind.DynamicallyLinkedLibrary, sources, extra);

    /// <summary>As <see cref="Compile(string, IEnumerable{ValueTuple{string, string}}, MetadataReference[])"/>, for an executable or a library.</summary>
    public static CSharpCompilation Compile(string assemblyName, OutputKind kind, IEnumerable<(string Path, string Text)> sources, params MetadataReference[] extra)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Preview);
        var trees = sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, parse, s.Path))
            .Append(CSharpSyntaxTree.ParseText(ImplicitUsings, parse, "ImplicitUsings.g.cs"));
        var options = new CSharpCompilationOptions(kind, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true);
        var compilation = CSharpCompilation.Create(assemblyName, trees, [.. References.Value, .. extra], options);
        // The SDK's source generators ([LibraryImport], [GeneratedRegex], System.Text.Json), as in a real build.
        CSharpGeneratorDriver.Create([.. Generators.Value], parseOptions: parse).RunGeneratorsAndUpdateCompilation(compilation, out var generated, out _);
        return (CSharpCompilation)generated;
    }

    private static readonly Lazy<ImmutableArray<ISourceGenerator>> Generators = new(() =>
    {
        // <dotnet root>/shared/Microsoft.NETCore.App/<v>/ -> <dotnet root>/packs/Microsoft.NETCore.App.Ref/<v>/analyzers/dotnet/cs/
        string runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        string packs = Path.GetFullPath(Path.Combine(runtimeDir, "..", "..", "..", "packs", "Microsoft.NETCore.App.Ref"));
        string? version = Directory.Exists(packs)
            ? Directory.GetDirectories(packs).Select(Path.GetFileName).OfType<string>().OrderByDescending(v => Version.TryParse(v.Split('-')[0], out var x) ? x : new Version()).FirstOrDefault()
            : null;
        if (version == null) throw new InvalidOperationException($"The .NET SDK's reference pack (for the source generators) is not at {packs}.");
        string dir = Path.Combine(packs, version, "analyzers", "dotnet", "cs");
        var loader = new GeneratorLoader();
        return [.. Directory.GetFiles(dir, "*.dll").Where(f => !f.EndsWith("SourceGeneration.dll", StringComparison.Ordinal) || f.Contains("Json", StringComparison.Ordinal))
            .SelectMany(f => new Microsoft.CodeAnalysis.Diagnostics.AnalyzerFileReference(f, loader).GetGenerators(LanguageNames.CSharp))];
    });

    private sealed class GeneratorLoader : Microsoft.CodeAnalysis.IAnalyzerAssemblyLoader
    {
        public void AddDependencyLocation(string fullPath) { }
        public System.Reflection.Assembly LoadFromPath(string fullPath) => System.Reflection.Assembly.LoadFrom(fullPath);
    }

    /// <summary>Compiles a project folder's *.cs files (bin/ and obj/ excluded), plus the C# that protoc generated at build
    /// time into obj/ (the ONNX exporter's onnx.proto3), from the configuration this test assembly was built in.</summary>
    public static CSharpCompilation CompileFolder(string folder, string assemblyName, OutputKind kind, params MetadataReference[] extra)
    {
        char sep = Path.DirectorySeparatorChar;
        var sources = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{sep}obj{sep}") && !f.Contains($"{sep}bin{sep}"))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        string configuration = AppContext.BaseDirectory.Contains($"{sep}Debug{sep}") ? "Debug" : "Release";
        string generated = Path.Combine(folder, "obj", configuration);
        if (Directory.Exists(generated))
            sources.AddRange(Directory.EnumerateFiles(generated, "*.cs", SearchOption.AllDirectories)
                .Where(f => File.ReadLines(f).Take(3).Any(l => l.Contains("protocol buffer compiler", StringComparison.Ordinal)))
                .GroupBy(Path.GetFileName).Select(g => g.OrderByDescending(File.GetLastWriteTimeUtc).First())
                .OrderBy(f => f, StringComparer.Ordinal));
        return Compile(assemblyName, kind, sources.Select(f => (f, File.ReadAllText(f))), extra);
    }

    /// <summary>
    /// Binds <paramref name="compilation"/> once, with the check as an analyzer: its compiler errors (a check of code that
    /// does not compile would miss things) and every finding, file paths relative to <paramref name="root"/>.
    /// </summary>
    public static (IReadOnlyList<string> Errors, IReadOnlyList<ScalarFinding> Findings) Analyze(Compilation compilation, string root = "")
    {
        var analyzer = new Analyzer();
        var withAnalyzer = compilation.WithAnalyzers([analyzer], new CompilationWithAnalyzersOptions(
            options: new AnalyzerOptions([]), onAnalyzerException: (e, _, _) => throw new InvalidOperationException("the Scalar check failed", e), concurrentAnalysis: true, logAnalyzerExecutionTime: false));
        var diagnostics = withAnalyzer.GetAllDiagnosticsAsync().GetAwaiter().GetResult();
        var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error && d.Id != Analyzer.Rule.Id).Select(d => d.ToString()).ToList();
        var findings = diagnostics.Where(d => d.Id == Analyzer.Rule.Id).Select(d =>
        {
            var span = d.Location.GetLineSpan();
            string file = root.Length > 0 ? Path.GetRelativePath(root, span.Path) : span.Path;
            return new ScalarFinding(file, span.StartLinePosition.Line + 1, (string)d.Properties["code"]!, (string)d.Properties["reason"]!);
        }).Distinct().OrderBy(f => f.File, StringComparer.Ordinal).ThenBy(f => f.Line).ThenBy(f => f.Code, StringComparer.Ordinal).ToList();
        return (errors, findings);
    }

    /// <summary>The check as a Roslyn analyzer over operations (diagnostic RSS17).</summary>
    // Run in-process by Analyze only, never loaded by a compiler: the analyzer-packaging rules do not apply.
#pragma warning disable RS1001, RS1036, RS1041, RS2008
    private sealed class Analyzer : Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer
    {
        public static readonly DiagnosticDescriptor Rule = new("RSS17", "Scalar left to the finaliser", "{0}: {1}", "Reliability", DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => [Rule];

        public override void Initialize(Microsoft.CodeAnalysis.Diagnostics.AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(Microsoft.CodeAnalysis.Diagnostics.GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterCompilationStartAction(start =>
            {
                if (start.Compilation.GetTypeByMetadataName("TorchSharp.Scalar") is not { } scalar) return;
                start.RegisterOperationAction(op =>
                {
                    if (Inspect(op.Operation, scalar) is not string reason) return;
                    string code = Shorten(op.Operation.Syntax.ToString());
                    var properties = ImmutableDictionary<string, string?>.Empty.Add("code", code).Add("reason", reason);
                    op.ReportDiagnostic(Diagnostic.Create(Rule, op.Operation.Syntax.GetLocation(), properties, reason, code));
                }, OperationKind.Conversion, OperationKind.Invocation, OperationKind.Binary, OperationKind.CompoundAssignment, OperationKind.Unary,
                   OperationKind.ObjectCreation, OperationKind.PropertyReference, OperationKind.MethodReference);
            });
        }
    }
#pragma warning restore RS1001, RS1036, RS1041, RS2008

    private static string? Inspect(IOperation op, INamedTypeSymbol scalar)
    {
        switch (op)
        {
            case IConversionOperation { Conversion.IsUserDefined: true, Conversion.MethodSymbol: { } m } c
                when SymbolEqualityComparer.Default.Equals(m.ContainingType, scalar) && SymbolEqualityComparer.Default.Equals(m.ReturnType, scalar):
                return $"{(c.IsImplicit ? "implicit" : "explicit")} conversion of {c.Operand.Type?.ToDisplayString() ?? "a value"} to TorchSharp.Scalar (the Scalar can be finalised while libtorch reads it; use a `using` Scalar or a cached one)";
            case IInvocationOperation inv:
                if (IsToScalar(inv.TargetMethod, scalar) && !KeptAlive(inv))
                    return "ToScalar() whose result is not kept alive (assign it to a `using` local or a field that owns it)";
                return Creator(inv.TargetMethod);
            case IBinaryOperation { OperatorMethod: { } m }:
                return Creator(m);
            case ICompoundAssignmentOperation { OperatorMethod: { } m }:
                return Creator(m);
            case IUnaryOperation { OperatorMethod: { } m }:
                return Creator(m);
            case IObjectCreationOperation { Constructor: { } m }:
                return Creator(m);
            case IPropertyReferenceOperation { Property: { } p }:
                return (p.GetMethod is { } g ? Creator(g) : null) ?? (p.SetMethod is { } s ? Creator(s) : null);
            case IMethodReferenceOperation { Method: { } m }:
                return Creator(m);
            default:
                return null;
        }
    }

    private static bool IsToScalar(IMethodSymbol m, INamedTypeSymbol scalar) =>
        m.Name == "ToScalar" && SymbolEqualityComparer.Default.Equals(m.ReturnType, scalar)
        && m.ContainingAssembly?.Name == "TorchSharp";

    /// <summary>True when the Scalar produced by <paramref name="op"/> is owned by a `using` local, a field or property, or returned.</summary>
    private static bool KeptAlive(IOperation op)
    {
        var parent = op.Parent;
        while (parent is IConversionOperation { IsImplicit: true } or IParenthesizedOperation) parent = parent.Parent;
        switch (parent)
        {
            case IVariableInitializerOperation init:
                // using var s = x.ToScalar();  or  using (var s = x.ToScalar()) { ... }
                for (var p = init.Parent; p != null; p = p.Parent)
                {
                    if (p is IUsingDeclarationOperation or IUsingOperation) return true;
                    if (p is IBlockOperation) break;
                }
                return false;
            case IFieldInitializerOperation or IPropertyInitializerOperation:
            case IReturnOperation:
                return true;
            case ISimpleAssignmentOperation a:
                return a.Target is IFieldReferenceOperation or IPropertyReferenceOperation;
            default:
                return false;
        }
    }

    private static string? Creator(IMethodSymbol method)
    {
        var m = (method.ReducedFrom ?? method).OriginalDefinition;
        if (m.ContainingAssembly?.Name != "TorchSharp" || m.Locations.Any(l => l.IsInSource)) return null;
        if (m.MethodKind == MethodKind.Conversion) return null;   // conversions: the implicit-conversion rule
        string? why = TorchSharpCreators.Reason(m.MetadataToken);
        return why == null ? null : $"TorchSharp's {m.ContainingType.Name}.{m.Name} {why} (pass a Scalar or Tensor you own, or use another overload)";
    }

    private static bool IsManaged(string path)
    {
        try
        {
            using var s = File.OpenRead(path);
            using var pe = new System.Reflection.PortableExecutable.PEReader(s);
            return pe.HasMetadata;
        }
        catch (BadImageFormatException) { return false; }
    }

    private static string Shorten(string code)
    {
        code = System.Text.RegularExpressions.Regex.Replace(code, @"\s+", " ");
        return code.Length <= 120 ? code : code[..117] + "...";
    }
}
