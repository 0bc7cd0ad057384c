#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Compiles the CUDA kernels (kernels/*.cu) ahead of time with nvcc into fatbins.

.DESCRIPTION
    Each module becomes artifacts/kernels/<module>.fatbin holding cubins for sm_80, sm_86, sm_89 and sm_90
    plus compute_90 PTX (which newer GPUs JIT-compile), and <module>.fatbin.sha256 recording the hash of the
    sources it was built from. The engine prefers a fatbin whose recorded hash equals the hash of its own
    embedded sources; otherwise it compiles with NVRTC at run time. The build copies artifacts/kernels into
    the engine's output folder (kernels/), so build the solution after running this.

    The source hash is SHA-256 over: common.cuh + "\n" + <module>.cu, carriage returns removed, as UTF-8
    (Dicc.Engine.Cuda.Compilation.KernelSources.SourceHash; scripts/gpu-check.sh hash does the same).

    Run with PowerShell 7 (a local tool of this repository):  dotnet tool restore; dotnet pwsh ./build-kernels.ps1

.PARAMETER Nvcc
    The nvcc to use; by default CUDA_PATH/bin/nvcc, nvcc on PATH, or /usr/local/cuda/bin/nvcc.

.PARAMETER OutputDirectory
    Where the fatbins go (default: artifacts/kernels).

.PARAMETER Architectures
    Real architectures to build cubins for (default 80, 86, 89, 90); PTX is added for the last one.

.PARAMETER HashOnly
    Print each module's source hash and exit (no nvcc needed).
#>
[CmdletBinding()]
param(
    [string]$Nvcc = "",
    [string]$OutputDirectory = "",
    [string[]]$Architectures = @("80", "86", "89", "90"),
    [switch]$HashOnly
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$root = $PSScriptRoot
$kernels = Join-Path $root "kernels"
$header = Join-Path $kernels "common.cuh"
if (-not $OutputDirectory) { $OutputDirectory = Join-Path (Join-Path $root "artifacts") "kernels" }

function Get-SourceHash([string]$module) {
    $text = ((Get-Content -Raw -LiteralPath $header) -replace "`r", "") + "`n" + ((Get-Content -Raw -LiteralPath $module) -replace "`r", "")
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($text)
    return [System.Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($bytes)).ToLowerInvariant()
}

$modules = Get-ChildItem -LiteralPath $kernels -Filter "*.cu" | Sort-Object Name
if ($modules.Count -eq 0) { throw "No kernels found in $kernels." }

if ($HashOnly) {
    foreach ($m in $modules) { "{0}  {1}" -f (Get-SourceHash $m.FullName), $m.Name }
    return
}

function Find-Nvcc {
    if ($Nvcc) {
        if (-not (Test-Path -LiteralPath $Nvcc)) { throw "-Nvcc $Nvcc names no file." }
        return $Nvcc
    }
    $exe = if ($IsWindows) { "nvcc.exe" } else { "nvcc" }
    if ($env:CUDA_PATH) {
        $candidate = Join-Path (Join-Path $env:CUDA_PATH "bin") $exe
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    $onPath = Get-Command $exe -ErrorAction SilentlyContinue
    if ($onPath) { return $onPath.Source }
    if (Test-Path "/usr/local/cuda/bin/nvcc") { return "/usr/local/cuda/bin/nvcc" }
    throw "nvcc was not found (looked at -Nvcc, CUDA_PATH/bin, PATH, /usr/local/cuda/bin). Install the CUDA toolkit or pass -Nvcc."
}

$nvccPath = Find-Nvcc
Write-Host "nvcc: $nvccPath"
& $nvccPath --version | Select-Object -Last 2 | ForEach-Object { Write-Host "  $_" }
New-Item -ItemType Directory -Force -Path $OutputDirectory | Out-Null

# One -gencode per real architecture, plus PTX of the newest so that later GPUs can JIT it.
$gencode = @()
foreach ($a in $Architectures) { $gencode += "-gencode=arch=compute_$a,code=sm_$a" }
$last = $Architectures[-1]
$gencode += "-gencode=arch=compute_$last,code=compute_$last"

foreach ($m in $modules) {
    $name = [System.IO.Path]::GetFileNameWithoutExtension($m.Name)
    $fatbin = Join-Path $OutputDirectory "$name.fatbin"
    # Same language and math settings as the NVRTC path (no fast math), so both give the same results.
    $arguments = @("-fatbin", "-std=c++17", "-I", $kernels) + $gencode + @("-o", $fatbin, $m.FullName)
    Write-Host "nvcc $($m.Name) -> $fatbin"
    & $nvccPath @arguments
    if ($LASTEXITCODE -ne 0) { throw "nvcc failed on $($m.Name) (exit code $LASTEXITCODE)." }
    "{0}  {1}" -f (Get-SourceHash $m.FullName), $m.Name | Set-Content -LiteralPath "$fatbin.sha256" -NoNewline:$false
}
Write-Host "Built $($modules.Count) fatbins in $OutputDirectory. Rebuild the solution to copy them beside the engine."
